// Package bench is the end-to-end benchmark behind `make bench`: deid in
// file mode against the same job written as DuckDB SQL, and against the
// decode limit (reading and decoding the input and nothing else), side by
// side, on one cached seeded input; and deid in Kafka mode against a bare
// kafka-go consumer (reading the topic and nothing else), on the same input
// produced to a local broker.
//
// Every contender runs as a child process, so each is measured the same
// way: wall time, user and system CPU time and peak RSS from the child's
// rusage (wait4). Contenders alternate within each repetition, and the
// report gives medians with min–max, never a single run: the machine is
// shared and noisy. CPU time is the steadier figure (events per
// CPU-second), and each sample records how much the machine's CPU was
// contended while it ran (/proc/pressure/cpu), so a noisy sample can be
// told from a slow program.
//
// The benchmark measures; it never passes or fails on time. What it checks
// is correctness: DuckDB's level-0 cells must equal deid's level-0 rows,
// and every cell DuckDB keeps that deid did not publish at level 0 must fail
// deid's dominance or p% rule (scripts/bench_duckdb.py compare); deid in
// Kafka mode and the bare consumer must each read every line of the input.
package bench
