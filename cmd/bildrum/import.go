package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/register"
	"github.com/bildrum/bildrum/sqlstore"
)

// importUsage is the command line of bildrum import.
const importUsage = "bildrum import -db DSN -region RR [-format csv|fhir] [-max-errors N] FILE"

// importShownErrors is how many errors of a rejected file are printed.
const importShownErrors = 20

// importConfig is what bildrum import is asked to do.
type importConfig struct {
	dsn       string // the node database: a SQLite file or a postgres:// URL; required
	region    string // county code of the node's region; required
	format    string // csv or fhir; default from the file's extension
	maxErrors int    // errors to collect before only counting; default register.DefaultMaxErrors
	file      string // the file, or - for standard input
}

// runImport imports a register file (CSV or a FHIR Bundle) into a node's
// database: all rows or, if any is bad, none, with the bad rows listed.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseImport(args, stdout)
	if err != nil {
		return err
	}
	in, size, err := openImportFile(cfg.file)
	if err != nil {
		return err
	}
	defer in.Close()
	db, err := sqlstore.Open(ctx, cfg.dsn, sqlstore.PartNode)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := checkNodeRegion(ctx, db, cfg.region); err != nil {
		return err
	}

	opts := register.Options{Region: cfg.region, FileName: filepath.Base(cfg.file), MaxErrors: cfg.maxErrors}
	var bar *progress
	if size > 0 {
		bar = newProgress(stderr, int(size), "importing "+opts.FileName+" (bytes)")
		var done int64
		opts.Progress = func(n int64) { bar.Add(int(n - done)); done = n }
	}
	importer := register.ImportCSV
	if cfg.format == "fhir" {
		importer = register.ImportFHIR
	}
	rep, err := importer(ctx, in, opts, db)
	if err != nil {
		if bar != nil && bar.bar != nil {
			fmt.Fprintln(stderr) // leave the bar's line
		}
		printImportErrors(stderr, rep)
		return err
	}
	if bar != nil {
		bar.Finish()
	}
	what := "rows"
	if cfg.format == "fhir" {
		what = "episodes"
	}
	fmt.Fprintf(stdout, "%s: %d %s read, %d changed, %d unchanged\n", opts.FileName, rep.Rows, what, rep.Changed, rep.Unchanged)
	return nil
}

// parseImport reads the command line: flags before or after the file.
func parseImport(args []string, stdout io.Writer) (importConfig, error) {
	var cfg importConfig
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.StringVar(&cfg.dsn, "db", "", "the node database to import into: a SQLite file or a postgres:// URL (required)")
	fs.StringVar(&cfg.region, "region", "", "county code of the node's region, such as 12; every row must belong to it (required)")
	fs.StringVar(&cfg.format, "format", "", "csv (the register CSV) or fhir (a FHIR R4 transaction Bundle); default from the file's extension: .json is fhir, anything else csv")
	fs.IntVar(&cfg.maxErrors, "max-errors", register.DefaultMaxErrors, "collect at most this many errors of a bad file; further ones are only counted")
	fs.SetOutput(io.Discard)
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stdout, "Usage: %s\n\nImport a screening register file into a node's database: every row, or none if any is bad.\n\n", importUsage)
				fs.SetOutput(stdout)
				fs.PrintDefaults()
				return cfg, err
			}
			return cfg, usageError{fmt.Sprintf("import: %v (see 'bildrum import -h')", err)}
		}
		if fs.NArg() == 0 {
			break
		}
		if cfg.file != "" {
			return cfg, usageError{fmt.Sprintf("import: unexpected argument %q: give one file (see 'bildrum import -h')", fs.Arg(0))}
		}
		cfg.file, args = fs.Arg(0), fs.Args()[1:]
	}
	return cfg, cfg.check()
}

// check says what to write instead of a command line that cannot run.
func (cfg *importConfig) check() error {
	switch {
	case cfg.file == "":
		return usageError{"import: give the file to import, or - for standard input: " + importUsage}
	case cfg.dsn == "":
		return usageError{"import: give the node's database with -db (a SQLite file or a postgres:// URL)"}
	case cfg.region == "":
		return usageError{"import: give the node's region with -region, a county code such as 12"}
	case cfg.maxErrors < 1:
		return usageError{"import: -max-errors must be at least 1"}
	}
	if _, err := bildrum.RegionByCode(cfg.region); err != nil {
		return usageError{"import: -region: " + bildrum.ErrorMessage(err)}
	}
	if cfg.format == "" {
		cfg.format = "csv"
		if strings.EqualFold(filepath.Ext(cfg.file), ".json") {
			cfg.format = "fhir"
		}
	}
	if cfg.format != "csv" && cfg.format != "fhir" {
		return usageError{fmt.Sprintf("import: -format %q: write csv or fhir", cfg.format)}
	}
	return nil
}

// openImportFile opens the file, or standard input for "-", and returns its
// size when known.
func openImportFile(name string) (io.ReadCloser, int64, error) {
	if name == "-" {
		return io.NopCloser(os.Stdin), 0, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, bildrum.Errorf(bildrum.EINVALID, "cannot open %s: %v", name, errors.Unwrap(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("import: %w", err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, bildrum.Errorf(bildrum.EINVALID, "%s is a directory: give a register file", name)
	}
	return f, fi.Size(), nil
}

// checkNodeRegion refuses a database that already holds another region's
// register.
func checkNodeRegion(ctx context.Context, db *sqlstore.DB, region string) error {
	sum, err := db.RegisterSummary(ctx)
	if err != nil {
		return err
	}
	if sum.Region != "" && sum.Region != region {
		return usageError{fmt.Sprintf("import: the database holds region %s's register, not region %s's: check -db and -region", sum.Region, region)}
	}
	return nil
}

// printImportErrors lists the first errors of a rejected file.
func printImportErrors(w io.Writer, rep register.Report) {
	for i, e := range rep.Errors {
		if i == importShownErrors {
			break
		}
		fmt.Fprintln(w, e.String())
	}
	if more := max(len(rep.Errors)-importShownErrors, 0) + rep.MoreErrors; more > 0 {
		fmt.Fprintf(w, "… and %d more errors\n", more)
	}
}
