package testenv

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
)

func TestPostgres(t *testing.T) {
	dsn := Postgres(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	defer conn.Close(context.Background())

	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(db, "t_testpostgres_") {
		t.Errorf("current_database() = %q, want a database of this test's own", db)
	}

	if _, err := conn.Exec(ctx, "CREATE TABLE person (id bigint PRIMARY KEY, name text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO person VALUES ($1, $2), ($3, $4)", 1, "Åsa Öberg", 2, "Märta Ek"); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := conn.QueryRow(ctx, "SELECT name FROM person WHERE id = $1", 1).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "Åsa Öberg" {
		t.Errorf("SELECT name = %q, want %q", name, "Åsa Öberg")
	}
}

// TestPostgresDrop checks that the database of a test is gone when the test
// has ended.
func TestPostgresDrop(t *testing.T) {
	var dsn string
	t.Run("inner", func(t *testing.T) {
		dsn = Postgres(t)
	})
	if dsn == "" {
		Unavailable(t, "no PostgreSQL server (%s is unset)", EnvPostgres)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	conn, err := pgx.Connect(t.Context(), os.Getenv(EnvPostgres))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
	tests := []struct {
		test   string
		prefix string
	}{
		{"TestStore", "t_teststore_"},
		{"TestStore/PostgreSQL/put#01", "t_teststore_postgresql_put_01_"},
		{"Test Å ä", "t_test_"},
		{strings.Repeat("TestVeryLong", 20), "t_testverylong"},
	}
	for _, tt := range tests {
		got := databaseName(tt.test)
		if !valid.MatchString(got) || !strings.HasPrefix(got, tt.prefix) {
			t.Errorf("databaseName(%q) = %q, want a name of [a-z0-9_]{1,63} starting %q", tt.test, got, tt.prefix)
		}
	}
	if a, b := databaseName("TestX"), databaseName("TestX"); a == b {
		t.Errorf("databaseName gave %q twice", a)
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct {
		dsn, want string
	}{
		{"postgres://bildrum@127.0.0.1:54321/postgres?sslmode=disable", "postgres://bildrum@127.0.0.1:54321/t_x?sslmode=disable"},
		{"postgresql://u:p@h/db", "postgresql://u:p@h/t_x"},
		{"postgres://h", "postgres://h/t_x"},
		{"host=/tmp port=5432 dbname=postgres", "host=/tmp port=5432 dbname=postgres dbname=t_x"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.dsn, "t_x")
		if err != nil || got != tt.want {
			t.Errorf("withDatabase(%q) = %q, %v, want %q", tt.dsn, got, err, tt.want)
		}
	}
}

func TestRequireExternal(t *testing.T) {
	if got := RequireExternal(t, "sh"); !strings.HasSuffix(got, "/sh") {
		t.Errorf("RequireExternal(sh) = %q", got)
	}
	if got := RequireExternal(t, "/bin/sh"); got != "/bin/sh" {
		t.Errorf("RequireExternal(/bin/sh) = %q", got)
	}
}

func TestBrowser(t *testing.T) {
	// httptest listens on 127.0.0.1 only.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html>
<title>testenv</title>
<p id="greeting">waiting</p>
<script>document.getElementById("greeting").textContent = "Hej från " + "Chromium";</script>`)
	}))
	defer srv.Close()

	ctx := BrowserContext(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatalf("navigate to %s: %v", srv.URL, err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#greeting")))
	if err != nil {
		t.Fatalf("text of #greeting: %v", err)
	}
	if want := "Hej från Chromium"; got != want {
		t.Errorf("text of #greeting = %q, want %q (the script did not run?)", got, want)
	}
}
