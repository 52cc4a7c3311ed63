// Package report renders what deid verify found, and the figures of an
// output, as one self-contained HTML page: for a compliance officer who
// wants the verdict and the exclusions, and for an ML lead who wants to
// know how much of the data was published at which generalization level.
//
// The page has no external scripts, fonts, stylesheets or images, and no
// script at all: CSS and SVG charts are inline, so it opens from a file,
// in a mail attachment or an archive, years later, exactly as it was.
// Rendering is deterministic: the same report and Meta give the same bytes.
//
// It shows, per window and dataset, the records read, contributed,
// excluded by reason and dead-lettered; the rows published per
// generalization level, the cells and events suppressed, the events
// withdrawn; a chart of exclusions by reason per window and one of the
// share of events published at each level; the accounting per partition;
// and every check of the verify report with its outcome.
package report
