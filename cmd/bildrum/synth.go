package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
)

// synthBatch is how many episodes go into the node store per transaction.
const synthBatch = 5000

func runSynth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	var (
		cfg               synth.Config
		regions, from, to string
		out, dsn          string
	)
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed: the same seed gives the same population")
	fs.StringVar(&regions, "regions", "01,12,14", "comma-separated county codes of the regions to populate")
	fs.StringVar(&from, "from", "2014-01-01", "first day of the simulated period")
	fs.StringVar(&to, "to", "2025-12-31", "last day of the simulated period")
	fs.IntVar(&cfg.Generate, "generate", 0, "add this many generated (non-official) numbers, for benchmarks only: such data must never leave the machine")
	fs.StringVar(&out, "out", "", "write register-RR.csv per region and metadata.json into this directory")
	fs.StringVar(&dsn, "db", "", "write the rows straight into this node database (SQLite file or postgres:// URL); needs exactly one region")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if (out == "") == (dsn == "") {
		return usageError{"synth: give either -out DIR (files) or -db DSN (a node's database)"}
	}
	cfg.Regions = strings.Split(regions, ",")
	var err error
	if cfg.From, err = bildrum.ParseDate(from); err != nil {
		return usageError{"synth: -from: " + bildrum.ErrorMessage(err)}
	}
	if cfg.To, err = bildrum.ParseDate(to); err != nil {
		return usageError{"synth: -to: " + bildrum.ErrorMessage(err)}
	}
	women, err := synth.Women(cfg)
	if err != nil {
		return err
	}
	bar := newProgress(stderr, len(women), "synthetic women")
	var meta synth.Metadata
	if out != "" {
		done := 0
		meta, err = synth.WriteFiles(ctx, cfg, out, func(d, total int) {
			bar.Add(d - done)
			done = d
		})
	} else {
		meta, err = synthIntoStore(ctx, cfg, dsn, bar)
	}
	if err != nil {
		return err
	}
	bar.Finish()
	for _, r := range meta.Regions {
		fmt.Fprintf(stdout, "region %s: %d women, %d register rows\n", r, meta.Women[r], meta.Episodes[r])
	}
	if meta.Synthetic {
		fmt.Fprintf(stdout, "note: %d generated numbers that may belong to real people: keep this data set on this machine\n", meta.GeneratedNumbers)
	}
	return nil
}

// synthIntoStore writes the population of one region into a node database,
// in batches, so memory stays flat whatever the population's size.
func synthIntoStore(ctx context.Context, cfg synth.Config, dsn string, bar *progress) (synth.Metadata, error) {
	if len(cfg.Regions) != 1 {
		return synth.Metadata{}, usageError{"synth: -db writes one node's register: give exactly one region with -regions"}
	}
	db, err := sqlstore.Open(ctx, dsn, sqlstore.PartNode)
	if err != nil {
		return synth.Metadata{}, err
	}
	defer db.Close()
	batch := make([]bildrum.ScreeningEpisode, 0, synthBatch)
	flush := func() error {
		if _, err := db.PutEpisodes(ctx, batch); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	var last bildrum.PersonID
	meta, err := synth.Generate(ctx, cfg, func(e bildrum.ScreeningEpisode) error {
		if e.Person != last {
			last = e.Person
			bar.Add(1)
			if len(batch) >= synthBatch {
				return flush()
			}
		}
		batch = append(batch, e)
		return nil
	})
	if err != nil {
		return meta, err
	}
	return meta, flush()
}
