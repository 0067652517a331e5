"""A task's one definition: what classification and regression each mean for every stage, the
service and the monitor, so none of them branches on the task's name (docs/developing.md, "Adding a task")."""
