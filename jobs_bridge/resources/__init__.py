"""What work runs on: the admin's environment list and the GPU allocator (shared by
workspaces, jobs and endpoints)."""
