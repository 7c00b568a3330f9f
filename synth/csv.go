package synth

import "github.com/bildrum/bildrum/register"

// EpisodeCSVHeader returns the column names of the register CSV.
//
// Deprecated: the register package owns the CSV format; use
// register.CSVHeader. This remains until the synth tests that call it move.
func EpisodeCSVHeader() []string { return register.CSVHeader() }
