// Package bench holds the benchmarks that compare the manager with the code
// a user would otherwise write (the plain database/sql loop, pgxpool) and
// with its peers (sqlx, scany). Run them with `make bench`, which also
// rewrites docs/benchmarks.md from the results; see cmd/benchdoc.
//
// Nothing here is a test of speed: `make test` compiles and vets this
// module and runs the tests of cmd/benchdoc, never a benchmark.
package bench
