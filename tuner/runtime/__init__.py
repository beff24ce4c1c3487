"""The process a sweep runs in: devices and thread shares (`devices`), worker processes
(`workers`), Ctrl-C and SIGTERM (`signals`), what counts as the machine failing
(`recovery`) and quieting the libraries' logs (`logs`)."""
