// Package s3test gives tests a real S3-compatible server: the Versity S3
// Gateway that scripts/s3-local.sh runs on 127.0.0.1, never a mock.
//
// Require returns the shared server that DEID_S3_ENDPOINT names (with the
// standard AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), which
// scripts/test.sh starts; when none is named it starts a private one for
// the test, as Private does. Private always starts one of the test's own,
// with its state under the test's temporary directory, which the test can
// stop and start again on the same port and data (Stop, Start), as a
// server restart would; it is stopped at cleanup.
//
// When a server cannot be had the test is skipped, unless DEID_REQUIRE_S3
// is set (scripts/test.sh sets it): then it fails, so the suite never
// skips it silently. Tests only ever talk to 127.0.0.1: Require refuses an
// endpoint elsewhere.
//
// Bucket makes a fresh bucket per test, and Client is an S3 client of the
// helper's own (static credentials, path-style), for checks that must not
// go through the code under test. Setenv points the standard AWS chain at
// the server for the code under test, and turns the instance-metadata
// lookup off so that nothing is asked of any other address.
package s3test
