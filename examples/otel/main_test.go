package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun checks that the example reports the spans and metrics it says.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"user 1 is Ada",
		`"Name": "SELECT :memory:"`, `"Name": "INSERT :memory:"`, `"Name": "dbm.transaction"`, `"Name": "dbm.acquire"`,
		`"db.system.name"`, `"sqlite"`, `"db.query.text"`,
		`"Name": "db.client.operation.duration"`, `"Name": "db.client.connection.count"`,
		`"Name": "db.client.connection.wait_time"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %s", want)
		}
	}
}
