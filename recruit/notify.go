package recruit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/bildrum/bildrum"
)

// Notification is a message telling a woman that her inbox at bildrum has
// a new invitation. It says nothing of the trial: an SMS or e-mail may be
// read by others, so the invitation itself is shown only after she logs in.
type Notification struct {
	Time    time.Time `json:"time"`
	Email   string    `json:"email,omitempty"`
	Phone   string    `json:"phone,omitempty"`
	Subject string    `json:"subject"`
	Text    string    `json:"text"`
}

// Notifier delivers notifications, a page at a time: a file in the demo,
// later SMS, e-mail or a digital mailbox such as Kivra. Notify returns nil
// once every message is handed over durably; an error leaves the page for
// the next round (so some may be sent twice, none never).
type Notifier interface {
	Notify(ctx context.Context, ns []Notification) error
}

// The wording of a notification, in Swedish and English.
const (
	notifySubject = "Ny inbjudan i Mina data / New invitation in My data"
	notifyText    = "Du har fått en inbjudan till en klinisk studie. Logga in på Mina data för att läsa den och svara. " +
		"You have been invited to a clinical trial. Log in to My data to read it and answer."
)

// notifyPage is how many notifications Notify delivers at once.
const notifyPage = 1000

// Notify sends the notifications of new invitations that are still
// pending, to the contact details each woman gives now (none when she has
// withdrawn her opt-in), a page at a time, and returns how many it sent.
// A page is marked sent only after it is delivered, so a crash between the
// two sends it again rather than never.
func (b *Broker) Notify(ctx context.Context) (int, error) {
	if b.Notifier == nil {
		return 0, nil
	}
	sent := 0
	for {
		pending, err := b.Store.PendingNotifications(ctx, notifyPage)
		if err != nil {
			return sent, err
		}
		persons := make([]bildrum.PersonID, len(pending))
		for i, n := range pending {
			persons[i] = n.Person
		}
		contacts, err := b.Consent.TrialContacts(ctx, persons)
		if err != nil {
			return sent, err
		}
		var page []Notification
		seqs := make([]int64, 0, len(pending))
		for _, n := range pending {
			seqs = append(seqs, n.Seq)
			if tc, ok := contacts[n.Person]; ok && tc.OptIn {
				page = append(page, Notification{Time: b.now().UTC(), Email: tc.Email, Phone: tc.Phone, Subject: notifySubject, Text: notifyText})
			}
		}
		if len(page) > 0 {
			if err := b.Notifier.Notify(ctx, page); err != nil {
				return sent, fmt.Errorf("notify about new invitations: %w", err)
			}
		}
		sent += len(page)
		if err := b.Store.NotificationsSent(ctx, seqs); err != nil {
			return sent, err
		}
		if len(pending) < notifyPage {
			return sent, nil
		}
	}
}

// FileNotifier appends each notification as a line of JSON to a file, and
// syncs it: the demo's stand-in for an SMS or e-mail gateway.
type FileNotifier struct {
	Path string
	mu   sync.Mutex
}

// Notify implements Notifier: one write and one sync for the page.
func (f *FileNotifier) Notify(ctx context.Context, ns []Notification) error {
	if len(ns) == 0 {
		return nil
	}
	var lines []byte
	for _, n := range ns {
		line, err := json.Marshal(n)
		if err != nil {
			return err
		}
		lines = append(append(lines, line...), '\n')
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	file, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("notification outbox: %w", err)
	}
	if _, err := file.Write(lines); err != nil {
		file.Close()
		return fmt.Errorf("notification outbox %s: %w", f.Path, err)
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return fmt.Errorf("notification outbox %s: %w", f.Path, err)
	}
	return file.Close()
}
