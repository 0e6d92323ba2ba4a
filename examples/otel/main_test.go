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
		`"Name": "SELECT :memory:"`, `"Name": "INSERT :memory:"`, `"Name": "dbm.transaction"`,
		`"db.system.name"`, `"sqlite"`, `"db.query.text"`,
		`"Name": "db.client.operation.duration"`, `"Name": "db.client.connection.count"`,
		`"Name": "db.client.connection.wait_time"`, `"Name": "db.client.connection.pending_requests"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	// One statement at a time: each finds a connection free, which
	// wait_time records but which makes no span.
	if strings.Contains(s, `"Name": "dbm.acquire"`) {
		t.Error("output has a dbm.acquire span, but no call waited")
	}
}
