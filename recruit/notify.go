package recruit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
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

// Notifier delivers notifications: a file in the demo, later SMS, e-mail
// or a digital mailbox such as Kivra. Notify returns nil once the message
// is handed over durably; an error leaves it for the next round.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// The wording of a notification, in Swedish and English.
const (
	notifySubject = "Ny inbjudan i Mina data / New invitation in My data"
	notifyText    = "Du har fått en inbjudan till en klinisk studie. Logga in på Mina data för att läsa den och svara. " +
		"You have been invited to a clinical trial. Log in to My data to read it and answer."
)

// Notify sends the notifications of new invitations that are still
// pending, to the contact details each woman gives now (none when she has
// withdrawn her opt-in), and returns how many it sent.
func (b *Broker) Notify(ctx context.Context) (int, error) {
	if b.Notifier == nil {
		return 0, nil
	}
	sent := 0
	for {
		pending, err := b.Store.PendingNotifications(ctx, 500)
		if err != nil {
			return sent, err
		}
		for _, n := range pending {
			rec, err := b.Consent.Consent(ctx, n.Person)
			if err != nil {
				return sent, err
			}
			if tc := rec.Choices.TrialContact; tc.OptIn {
				if err := b.Notifier.Notify(ctx, Notification{Time: b.now().UTC(), Email: tc.Email, Phone: tc.Phone,
					Subject: notifySubject, Text: notifyText}); err != nil {
					return sent, fmt.Errorf("notify about invitation %s: %w", n.Invitation, err)
				}
				sent++
			}
			if err := b.Store.NotificationSent(ctx, n.Seq); err != nil {
				return sent, err
			}
		}
		if len(pending) < 500 {
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

// Notify implements Notifier.
func (f *FileNotifier) Notify(ctx context.Context, n Notification) error {
	line, err := json.Marshal(n)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	file, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("notification outbox: %w", err)
	}
	if _, err := file.Write(append(line, '\n')); err != nil {
		file.Close()
		return fmt.Errorf("notification outbox %s: %w", f.Path, err)
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return fmt.Errorf("notification outbox %s: %w", f.Path, err)
	}
	return file.Close()
}
