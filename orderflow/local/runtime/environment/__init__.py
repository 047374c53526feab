"""One execution environment: the function process, the Runtime API it speaks, and how it is started."""
