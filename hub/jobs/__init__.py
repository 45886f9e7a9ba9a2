"""Background jobs of the hub: code generation (``generate``) and the service that runs
them in a hub process and resumes the ones a dead process left behind (``runner``)."""
