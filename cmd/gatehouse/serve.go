package main

import (
	"context"
	"errors"
	"io"
)

// runServe runs the server. This is a placeholder: the real serve.go replaces
// this file.
//
// Contract with the rest of the CLI: main dispatches "gatehouse serve ARGS"
// here; `gatehouse help serve` calls runServe(ctx, []string{"-h"}, w, w) and
// expects the help text on either writer and flag.ErrHelp (or nil) back. A
// returned *usageError exits with status 2, any other error with status 1.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented")
}
