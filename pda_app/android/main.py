"""Android entry point (python-for-android runs main.py). See buildozer.spec."""

from pathlib import Path

from pda_app.ui.app import PdaApp

if __name__ == "__main__":
    try:
        from android.storage import app_storage_path

        data = Path(app_storage_path()) / "yima-pda"
    except ImportError:  # a desktop run of the same file
        data = Path.home() / ".yima-pda"
    PdaApp(data).run()
