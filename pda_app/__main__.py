from pda_app.cli import main

raise SystemExit(main())
