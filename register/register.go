// Package register holds the screening register's published formats, their
// validation and their import: the CSV of docs/register.md and FHIR R4
// transaction Bundles, read row by row into a node's bildrum.RegisterStore.
//
// An import is atomic and streaming. ImportCSV reads a file once, checks
// every row against the column specification and the consistency rules, and
// hands the valid rows to the store's PutEpisodeStream inside one
// transaction; if any row is bad, the transaction rolls back, nothing is
// stored, and the Report names every bad row (up to a limit) by file, line
// and column, in words a register clerk can act on. ImportFHIR does the same
// for a Bundle, after checking it against the official FHIR R4 JSON schema.
// WriteCSV writes the import format back out, so an export re-imports
// unchanged.
package register

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/bildrum/bildrum"
)

// Store is where an import writes. bildrum.RegisterStore satisfies it; its
// contract is the one of PutEpisodeStream there: the sequence is read inside
// one transaction, committed only if it ends without error, and rolled back
// entirely otherwise.
type Store interface {
	PutEpisodeStream(ctx context.Context, episodes iter.Seq2[bildrum.ScreeningEpisode, error]) (bildrum.PutResult, error)
}

// Defaults of Options.
const (
	DefaultMaxErrors = 100
	DefaultMaxBytes  = 64 << 20 // 64 MiB: some 10,000 episodes in the form of MarshalBundle
)

// Options say whose register an import writes to and how it reports.
type Options struct {
	// Region is the county code of the importing node ("12"). Every row
	// must belong to it. Required.
	Region string

	// FileName names the input in messages ("register-12.csv"). Default
	// "register.csv" for ImportCSV and "bundle.json" for ImportFHIR.
	FileName string

	// MaxErrors is how many errors the Report lists; further ones are
	// only counted. Default DefaultMaxErrors.
	MaxErrors int

	// MaxBytes bounds the size of a FHIR Bundle, which is read whole into
	// memory to be checked against the schema. Default DefaultMaxBytes.
	// ImportCSV streams and ignores it.
	MaxBytes int64

	// Progress, when set, is called from time to time with the number of
	// bytes read so far, and once at the end; ImportCSV calls it from the
	// goroutine that reads the input, one call at a time.
	Progress func(bytesRead int64)

	// Now is the clock that decides which dates lie in the future.
	// Default time.Now.
	Now func() time.Time
}

// withDefaults checks o and fills in its defaults.
func (o Options) withDefaults(file string) (Options, error) {
	if _, err := bildrum.RegionByCode(o.Region); err != nil {
		return o, fmt.Errorf("import: region of the node: %w", err)
	}
	if o.FileName == "" {
		o.FileName = file
	}
	if o.MaxErrors <= 0 {
		o.MaxErrors = DefaultMaxErrors
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// FieldError is one thing wrong with the input, placed so that the person
// who made the file can find and fix it. A CSV error has a Line (1 is the
// header) and, when it concerns one value, the Column (from 1) and its
// name in Field; a FHIR error has the Entry (from 0), the Resource type and
// the JSON Path, and Field when it maps to a register column.
//
// Its JSON form is the element of the "errors" extension member of the
// problem details that the HTTP layer returns for a rejected import.
type FieldError struct {
	File     string `json:"file"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Field    string `json:"field,omitempty"`
	Entry    *int   `json:"entry,omitempty"`
	Resource string `json:"resource,omitempty"`
	Path     string `json:"path,omitempty"`
	Message  string `json:"message"`
}

// String returns the error as one line for people:
// "register-12.csv: line 7, column 8 (exam_date): …" or
// "bundle.json: entry 3 (ImagingStudy) at Bundle.entry[3].resource.started: …".
func (e FieldError) String() string {
	var b strings.Builder
	b.WriteString(e.File)
	var place []string
	if e.Line > 0 {
		place = append(place, fmt.Sprintf("line %d", e.Line))
	}
	if e.Column > 0 {
		place = append(place, fmt.Sprintf("column %d (%s)", e.Column, e.Field))
	}
	if e.Entry != nil {
		entry := fmt.Sprintf("entry %d", *e.Entry)
		if e.Resource != "" {
			entry += " (" + e.Resource + ")"
		}
		place = append(place, entry)
	}
	if len(place) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(place, ", "))
	}
	if e.Path != "" {
		b.WriteString(" at ")
		b.WriteString(e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// Report says what an import did. On success Errors is empty and Changed +
// Unchanged = Rows. When the input was rejected nothing was stored, Changed
// and Unchanged are zero, and Errors lists the first Options.MaxErrors
// errors in input order, with MoreErrors counting the rest.
type Report struct {
	File       string       `json:"file"`
	Rows       int          `json:"rows"`      // rows (CSV) or episodes (FHIR) read
	Changed    int          `json:"changed"`   // inserted or corrected
	Unchanged  int          `json:"unchanged"` // already stored exactly so
	Invalid    int          `json:"invalid"`   // rows or episodes with at least one error
	Errors     []FieldError `json:"errors,omitempty"`
	MoreErrors int          `json:"more_errors,omitempty"` // errors beyond Errors
}

// collector gathers a Report's errors up to the limit.
type collector struct {
	report *Report
	max    int
	fatal  string // why the whole input was rejected, if it was
}

// add records one error.
func (c *collector) add(e FieldError) {
	if len(c.report.Errors) < c.max {
		c.report.Errors = append(c.report.Errors, e)
		return
	}
	c.report.MoreErrors++
}

// failed reports whether anything was wrong.
func (c *collector) failed() bool {
	return c.fatal != "" || c.report.Invalid > 0 || len(c.report.Errors) > 0
}

// rejection is the error an import returns for bad input: EINVALID, with a
// summary for people; the Report holds the details.
func (c *collector) rejection() error {
	r := c.report
	switch {
	case c.fatal != "":
		return bildrum.Errorf(bildrum.EINVALID, "%s: %s; nothing was imported", r.File, c.fatal)
	case r.Invalid == 1:
		return bildrum.Errorf(bildrum.EINVALID, "%s: 1 row is invalid; nothing was imported", r.File)
	case r.Invalid > 1:
		return bildrum.Errorf(bildrum.EINVALID, "%s: %d rows are invalid; nothing was imported", r.File, r.Invalid)
	}
	n := len(r.Errors) + r.MoreErrors
	if n == 1 {
		return bildrum.Errorf(bildrum.EINVALID, "%s: %s; nothing was imported", r.File, r.Errors[0].Message)
	}
	return bildrum.Errorf(bildrum.EINVALID, "%s: %d errors; nothing was imported", r.File, n)
}
