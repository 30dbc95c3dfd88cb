// Temporary: blank imports that keep go.mod and go.sum complete while the packages using them are written.
// Delete once every one of these is imported by real code.
package main

import (
	_ "github.com/go-git/go-git/v5"
	_ "github.com/go-git/go-git/v5/config"
	_ "github.com/go-git/go-git/v5/plumbing"
	_ "github.com/go-git/go-git/v5/plumbing/object"
	_ "github.com/go-git/go-git/v5/plumbing/transport/http"
	_ "github.com/go-git/go-git/v5/storage/filesystem"
	_ "github.com/go-git/go-git/v5/storage/memory"
	_ "github.com/google/go-github/v60/github"
)
