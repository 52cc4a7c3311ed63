// Package privacy is the privacy gate (contract §7, promise P2): it decides,
// for one dataset window, which aggregates may be published.
//
// All checks use exact integer arithmetic on per-workspace totals (a
// workspace's contributions to a cell summed first). A cell fails when:
//   - frequency: some protected entity has fewer than k distinct values in
//     it: workspaces (always protected) or, say, creators or users, counted
//     over the union of the workspaces' sets;
//   - (n, k%) dominance: for some dominance measure with total X > 0, the n
//     largest workspace totals sum to more than k% of X;
//   - p% rule: for some dominance measure with total X > 0, what is left
//     after the two largest is less than p% of the largest;
//   - an int64 overflow, a negative total or a contribution marked as
//     overflowed: the cell fails closed.
//
// The dominance measures are the ones the dataset declares and, whether
// declared or not, every sum measure: a published sum that one workspace
// dominates (nearly all of a cell's clicks, say) would disclose that
// workspace's figure.
//
// Products such as 100·X are computed in 128 bits, so a large cell is
// judged on its true values. Level-0 cells that pass are published; the
// failing ones (the residue) are generalized by the dataset's strategy
// (contract §7, Privacy.Generalization):
//   - ladder: re-keyed one step up the dataset's ladder and merged with
//     each other only, never with a published cell, and judged again; what
//     still fails after the last step is suppressed;
//   - mondrian (mondrian.go): partitioned top down along the hierarchies,
//     from one box with every dimension at "*", choosing per box the split
//     (or none) of least information loss (package infoloss); what the
//     search leaves at the root of a residue that fails as a whole is
//     suppressed.
//
// Suppressed cells are reported (suppressed_frequency when frequency
// failed, else suppressed_dominance). Under both, every contribution lands
// in exactly one published row or one suppressed cell; the rows' cells form
// a laminar family (any two disjoint or nested) and each level-0 cell is in
// the smallest row containing it, so rows never overlap and no row can be
// subtracted from another to isolate a small group. Every row carries each
// dimension's level (Row.DimLevels).
//
// The gate never modifies its input, never publishes order statistics
// (min, max, median, percentiles: each one is some entity's value), and
// its output is deterministic: rows sorted by dimension values then level,
// suppressed cells likewise, whatever the order of the input maps. A spec
// it cannot apply exactly (k below 3, say) is an error, so the window is
// not published at all.
package privacy
