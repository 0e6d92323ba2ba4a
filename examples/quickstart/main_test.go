package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestQuickstartOnEmbeddedSQLite runs the quickstart as `make run` does on a
// fresh machine: no DB_* variables, embedded SQLite.
func TestQuickstartOnEmbeddedSQLite(t *testing.T) {
	for _, v := range []string{"DB_DRIVER", "DB_DSN", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"} {
		t.Setenv(v, "")
	}
	t.Chdir(t.TempDir()) // no .env file
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"Ada Lovelace", "Grace Hopper", "Alan Turing", "in_use=0", "max_open=10"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Charles Babbage") {
		t.Errorf("inactive user listed:\n%s", got)
	}
}
