package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bildrum/bildrum/tlog"
)

const logUsage = `Usage:
  bildrum log verify -url HUB/log -vkey KEY [-state FILE] [-full] [-witness KEY]... [-person-key HEX]
        verify the transparency log: its checkpoint signature and witness
        cosignatures, consistency with the checkpoint seen last time, and
        with -full the whole tree recomputed from the entry bundles
  bildrum log show -url HUB/log -index N [-vkey KEY] [-person-key HEX]
        print one leaf, checked for inclusion in the signed checkpoint

docs/transparency.md says what the log proves and how to check it with
nothing but HTTP.
`

// runLog runs `bildrum log`, the auditor's view of the transparency log.
func runLog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"log: say what to do: verify or show (see 'bildrum log -h')"}
	}
	switch args[0] {
	case "verify":
		return runLogVerify(ctx, args[1:], stdout)
	case "show":
		return runLogShow(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, logUsage)
		return nil
	}
	return usageError{fmt.Sprintf("log: unknown command %q: use verify or show (see 'bildrum log -h')", args[0])}
}

// witnessFlags collects repeated -witness flags.
type witnessFlags []string

func (w *witnessFlags) String() string     { return strings.Join(*w, ",") }
func (w *witnessFlags) Set(s string) error { *w = append(*w, s); return nil }

// logClientFlags are the flags shared by the log commands.
type logClientFlags struct {
	url       string
	vkey      string
	witnesses witnessFlags
	quorum    int
	personKey string
	timeout   time.Duration
}

func (f *logClientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "the log's URL prefix, e.g. https://hub.example/log")
	fs.StringVar(&f.vkey, "vkey", "", "the log's verifier key, origin+hash+base64, as the hub publishes it")
	fs.Var(&f.witnesses, "witness", "a witness's cosignature verifier key that checkpoints must carry (repeatable)")
	fs.IntVar(&f.quorum, "witness-quorum", 0, "how many of the -witness keys must have cosigned (default all)")
	fs.StringVar(&f.personKey, "person-key", "", "a person key (hex) from the hub: show which leaves are hers and what they say")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "bound on each HTTP request")
}

func (f *logClientFlags) client(name string) (*tlog.Client, []byte, error) {
	if f.url == "" {
		return nil, nil, usageError{fmt.Sprintf("log %s: give the log's URL with -url, e.g. -url https://hub.example/log", name)}
	}
	var pk []byte
	if f.personKey != "" {
		var err error
		if pk, err = hex.DecodeString(f.personKey); err != nil || len(pk) != tlog.PersonKeySize {
			return nil, nil, usageError{fmt.Sprintf("log %s: -person-key wants %d hex digits, as the hub gives it", name, 2*tlog.PersonKeySize)}
		}
	}
	c, err := tlog.NewClient(f.url, f.vkey, f.witnesses, f.quorum, &http.Client{Timeout: f.timeout})
	if err != nil {
		return nil, nil, usageError{fmt.Sprintf("log %s: %v", name, err)}
	}
	return c, pk, nil
}

func runLogVerify(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("log verify", flag.ContinueOnError)
	var f logClientFlags
	f.register(fs)
	state := fs.String("state", "", "file keeping the last checkpoint verified (default: in the user's config directory, one per log)")
	full := fs.Bool("full", false, "recompute the whole tree from the entry bundles and check every tile and the root")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if f.vkey == "" {
		return usageError{"log verify: give the log's verifier key with -vkey (from a source you trust: the hub's published key, not the log itself)"}
	}
	c, pk, err := f.client("verify")
	if err != nil {
		return err
	}
	if *state == "" {
		if *state, err = defaultStatePath(c.Origin(), f.vkey); err != nil {
			return err
		}
	}

	cp, err := c.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("log verify: %w", err)
	}
	fmt.Fprintf(stdout, "log %s: checkpoint of size %d, root %x\n", cp.Origin, cp.Size, cp.Hash)
	fmt.Fprintf(stdout, "  signature: verified with %s\n", f.vkey)
	if len(f.witnesses) > 0 {
		fmt.Fprintf(stdout, "  witnesses: cosigned by %s\n", strings.Join(cp.Cosigners, ", "))
	}

	old, err := readState(c, *state)
	if err != nil {
		return err
	}
	if old == nil {
		fmt.Fprintf(stdout, "  consistency: first checkpoint seen from this log (state %s)\n", *state)
	} else {
		if err := c.CheckConsistency(ctx, *old, cp); err != nil {
			return fmt.Errorf("log verify: %w (the earlier checkpoint is in %s)", err, *state)
		}
		fmt.Fprintf(stdout, "  consistency: extends the checkpoint of size %d seen before (state %s)\n", old.Size, *state)
	}

	if !*full {
		if err := c.CheckTiles(ctx, cp); err != nil {
			return fmt.Errorf("log verify: %w", err)
		}
		fmt.Fprintf(stdout, "  tiles: hash to the signed root\n")
	} else {
		// Every leaf must be one this program can read: a leaf it cannot
		// read is named, not skipped, since it could hide anything.
		var mine []uint64
		var aboutPersons, aboutNoPerson uint64
		var unreadable []string
		visit := func(index uint64, e []byte) error {
			leaf, err := tlog.ParseLeaf(e)
			switch {
			case err != nil:
				unreadable = append(unreadable, fmt.Sprintf("leaf %d: %v", index, err))
				return nil
			case leaf.AboutPerson():
				aboutPersons++
			default:
				aboutNoPerson++
			}
			if pk != nil && leaf.Mine(pk) {
				mine = append(mine, index)
			}
			return nil
		}
		// The audit checks every tile the tiles-only check would read, and
		// names what is wrong.
		if err := c.Audit(ctx, cp, visit); err != nil {
			return fmt.Errorf("log verify -full: %w", err)
		}
		fmt.Fprintf(stdout, "  tiles: hash to the signed root\n")
		fmt.Fprintf(stdout, "  full: %d entries recomputed from the entry bundles; every tile and the root match\n", cp.Size)
		if len(unreadable) > 0 {
			return fmt.Errorf("log verify -full: %d of %d leaves are not in a leaf format this program reads (upgrade it, or the log holds foreign entries):\n  %s",
				len(unreadable), cp.Size, strings.Join(unreadable[:min(len(unreadable), 20)], "\n  "))
		}
		fmt.Fprintf(stdout, "  leaves: %d about a person (version 1), %d about no one person (version 2: feasibility counts)\n", aboutPersons, aboutNoPerson)
		if pk != nil {
			fmt.Fprintf(stdout, "  person: %d leaves are this person's: %s\n", len(mine), joinUints(mine))
		}
	}
	if err := writeState(*state, cp.Raw); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "OK")
	return nil
}

func runLogShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("log show", flag.ContinueOnError)
	var f logClientFlags
	f.register(fs)
	index := fs.Int64("index", -1, "the leaf to show")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *index < 0 {
		return usageError{"log show: give the leaf with -index N"}
	}
	if f.vkey == "" && f.url != "" {
		key, err := fetchVerifierKey(ctx, f.url, f.timeout)
		if err != nil {
			return fmt.Errorf("log show: no -vkey given, and %w", err)
		}
		fmt.Fprintf(stderr, "bildrum: warning: trusting the key the log serves itself, %s: pin the published key with -vkey\n", key)
		f.vkey = key
	}
	c, pk, err := f.client("show")
	if err != nil {
		return err
	}
	cp, err := c.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("log show: %w", err)
	}
	e, err := c.Entry(ctx, cp, uint64(*index))
	if err != nil {
		return fmt.Errorf("log show: %w", err)
	}
	fmt.Fprintf(stdout, "leaf %d of %s, included in the signed checkpoint of size %d\n", *index, cp.Origin, cp.Size)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, e, "", "  "); err != nil {
		fmt.Fprintf(stdout, "%q\n", e)
	} else {
		fmt.Fprintln(stdout, pretty.String())
	}
	if pk == nil {
		return nil
	}
	leaf, err := tlog.ParseLeaf(e)
	if err != nil {
		return fmt.Errorf("log show: %w", err)
	}
	d, err := tlog.OpenDetails(pk, leaf)
	if errors.Is(err, tlog.ErrNotMine) {
		fmt.Fprintln(stdout, "person: this leaf is not about the person of this key")
		return nil
	} else if err != nil {
		return fmt.Errorf("log show: %w", err)
	}
	fmt.Fprintf(stdout, "person: this leaf is about the person of this key\n  what: %s\n  actor: %s\n", d.What, d.ActorName)
	return nil
}

// fetchVerifierKey asks the log for its own key: trust on first use.
func fetchVerifierKey(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(prefix, "/")+"/v1/verifier-key", nil)
	if err != nil {
		return "", fmt.Errorf("the log URL %q is not usable: %v", prefix, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("the log's key could not be fetched: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the log does not serve its key at %s (%s): give it with -vkey", req.URL, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// defaultStatePath is where log verify keeps the last checkpoint of a log,
// one file per origin and key.
func defaultStatePath(origin, vkey string) (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", usageError{fmt.Sprintf("log verify: no config directory to keep the state in (%v): give one with -state FILE", err)}
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, origin)
	if _, rest, ok := strings.Cut(vkey, "+"); ok {
		hash, _, _ := strings.Cut(rest, "+")
		name += "-" + hash
	}
	return filepath.Join(dir, "bildrum", "log-state", name+".checkpoint"), nil
}

// readState returns the checkpoint kept in the state file, nil when there
// is none yet.
func readState(c *tlog.Client, path string) (*tlog.Checkpoint, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("log verify: state: %w", err)
	}
	// The log's signature is what matters for the old checkpoint; the
	// witness policy may have changed since.
	plain, err := tlog.NewClient("http://state.invalid/", c.VerifierKey(), nil, 0, nil)
	if err != nil {
		return nil, err
	}
	cp, err := plain.ParseCheckpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("log verify: the state file %s does not hold a checkpoint of this log: %v (remove it only if you know the log's key changed on purpose)", path, err)
	}
	return &cp, nil
}

// writeState replaces the state file atomically.
func writeState(path string, raw []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("log verify: state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".checkpoint-*")
	if err != nil {
		return fmt.Errorf("log verify: state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fmt.Errorf("log verify: state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("log verify: state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("log verify: state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("log verify: state: %w", err)
	}
	return nil
}

func joinUints(l []uint64) string {
	if len(l) == 0 {
		return "none"
	}
	s := make([]string, len(l))
	for i, n := range l {
		s[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(s, ", ")
}
