package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
)

// CredentialEntry is one bearer credential a part accepts, as the
// credentials file lists it: the SHA-256 of the token, never the token.
type CredentialEntry struct {
	TokenSHA256  string           `json:"token_sha256"`
	Name         string           `json:"name"`
	Role         bildrum.Role     `json:"role"`
	Organisation string           `json:"organisation"`
	Region       string           `json:"region,omitempty"`
	PersonID     bildrum.PersonID `json:"person_id,omitempty"`
}

// loadCredentials puts the credentials of a file into a part's store, so a
// part started from configuration accepts the same users as the demo.
func loadCredentials(ctx context.Context, path string, store bildrum.CredentialStore) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return bildrum.Errorf(bildrum.EINVALID, "credentials file %s: %v", path, errors.Unwrap(err))
	}
	var entries []CredentialEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return bildrum.Errorf(bildrum.EINVALID, "credentials file %s: %v", path, err)
	}
	for i, e := range entries {
		raw, err := hex.DecodeString(e.TokenSHA256)
		if err != nil || len(raw) != 32 {
			return bildrum.Errorf(bildrum.EINVALID, "credentials file %s, entry %d: token_sha256 must be 64 hex digits", path, i+1)
		}
		var h bildrum.TokenHash
		copy(h[:], raw)
		p := bildrum.Principal{Name: e.Name, Role: e.Role, Organisation: e.Organisation, Region: e.Region, Person: e.PersonID}
		if err := store.PutCredential(ctx, h, p); err != nil {
			return err
		}
	}
	return nil
}

// readConfig reads a JSON configuration file strictly: an unknown field is
// an error naming it, so a typo does not silently fall back to a default.
func readConfig(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return bildrum.Errorf(bildrum.EINVALID, "configuration %s: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bildrum.Errorf(bildrum.EINVALID, "configuration %s: %v (see docs/deploy.md for the fields)", path, err)
	}
	return nil
}

// partConfig reads the -config flag of `bildrum hub` or `bildrum node` and
// the file it names into cfg, and returns the part's logger.
func partConfig(name string, args []string, stdout, stderr io.Writer, cfg any) (*slog.Logger, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "", name+" configuration file (JSON, see docs/deploy.md)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return nil, err
	}
	if *path == "" {
		return nil, usageError{name + ": give the configuration with -config FILE (see docs/deploy.md; 'bildrum demo -write-config DIR' writes examples)"}
	}
	if err := readConfig(*path, cfg); err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(stderr, nil)), nil
}

// listen opens a TCP listener with a message that says what to do when the
// address is taken.
func listen(addr, what string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, bildrum.Errorf(bildrum.EUNAVAILABLE, "address %s (%s) is in use by another program: stop it, or choose another port (port 0 picks a free one)", addr, what)
	} else if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "cannot listen on %s (%s): %v", addr, what, errors.Unwrap(err))
	}
	return l, nil
}

// server is one HTTP server of a part on its listener.
type server struct {
	srv *http.Server
	l   net.Listener
	tls *tls.Config
}

func newHTTPServer(h http.Handler, l net.Listener, tlsConfig *tls.Config, log *slog.Logger) server {
	return server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			TLSConfig:         tlsConfig,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		l:   l,
		tls: tlsConfig,
	}
}

// serveAll runs servers until ctx ends; a server closed on purpose is not a failure.
func serveAll(ctx context.Context, log *slog.Logger, servers []server) error {
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			if s.tls != nil {
				errc <- s.srv.ServeTLS(s.l, "", "")
			} else {
				errc <- s.srv.Serve(s.l)
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			return nil
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve: %w", err)
			}
		}
	}
}

// shutdownAll stops servers, waiting briefly for requests under way.
func shutdownAll(servers []server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		s.srv.Shutdown(ctx)
		s.l.Close()
	}
}

// openDatabase opens a part's database, its directory made when it is a file.
func openDatabase(ctx context.Context, dsn string, part sqlstore.Part) (*sqlstore.DB, error) {
	if dsn == "" {
		return nil, bildrum.Errorf(bildrum.EINVALID, "no database configured: set \"database\" to a file path or a postgres:// URL")
	}
	return sqlstore.Open(ctx, dsn, part)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
