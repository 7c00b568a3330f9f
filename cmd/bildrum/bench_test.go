package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// BenchmarkDemoStart measures `bildrum demo` start-up until every part
// listens and endpoints.json is written: from an empty data directory (the
// synthetic registers and the default 200 examinations of mammograms per
// region are built) and from one that holds them already.
func BenchmarkDemoStart(b *testing.B) {
	start := func(b *testing.B, dir string) {
		d := NewDemo(DemoConfig{DataDir: dir, Addr: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Progress: io.Discard})
		if err := d.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		d.Close()
		b.StartTimer()
	}
	b.Run("empty", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			dir := b.TempDir()
			b.StartTimer()
			start(b, dir)
		}
	})
	b.Run("existing", func(b *testing.B) {
		dir := b.TempDir()
		start(b, dir)
		b.ResetTimer()
		for b.Loop() {
			start(b, dir)
		}
	})
}
