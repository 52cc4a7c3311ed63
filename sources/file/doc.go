// Package file is deid's NDJSON file source: each input file is one
// partition, each line one record (contract §3.1).
//
// Input paths may name files, directories (every *.ndjson, *.ndjson.gz,
// *.jsonl and *.jsonl.gz file directly inside, not recursively) or glob
// patterns. A file is a partition named by its base name, so two input files
// with the same base name are a configuration error; a record's position is
// that name and its 1-based line number. Gzip is recognized by its magic
// bytes, whatever the file is called.
//
// Guarantees:
//   - every line is accounted for: a line is a record, in order, whatever it
//     holds. A blank line becomes a record marked malformed ("empty_record")
//     and a line longer than the limit a record cut to the limit and marked
//     "too_long"; neither stops the reader nor is dropped. A final newline at
//     the end of a file does not start another line. A trailing '\r' and a
//     UTF-8 byte-order mark at the start of a file are removed;
//   - a corrupt or truncated gzip stream, or a failing read, is an error that
//     names the file and the last line read; records before it are delivered
//     first, and an incomplete last line is never delivered. (Gzip checks
//     its CRC at the end of a member, so flipped bits inside a member may
//     yield damaged lines before the error; the run then fails and does not
//     finish on such input);
//   - reading can resume after a given line (Reader.SeekLine, Source.Open), and
//     a resume point beyond the end of a file is an error, since it means the
//     file changed since the checkpoint.
//
// Next hands out batches built in buffers the reader reuses: one byte arena
// and one record slice per reader. A batch, and every record Value in it, is
// valid only until the next call to Next; nothing of the input is allocated
// per line once the buffers have grown to a batch's size.
package file
