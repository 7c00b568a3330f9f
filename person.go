package bildrum

import (
	"time"
)

// PersonID is a Swedish personal identity number (personnummer) or
// coordination number (samordningsnummer) in its 12-digit form YYYYMMDDNNNC,
// where C is the Luhn check digit over the last ten digits and a
// samordningsnummer adds 60 to the day of birth (Skatteverket SKV 704, 707).
type PersonID string

// ParsePersonID accepts a 12-digit number, optionally with a '-' or '+'
// before the last four digits, checks the date and the check digit, and
// returns the canonical 12-digit form.
func ParsePersonID(s string) (PersonID, error) {
	digits := make([]byte, 0, 12)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case (c == '-' || c == '+') && i == len(s)-5 && len(digits) == 8:
		default:
			return "", Errorf(EINVALID, "personnummer %q: only digits are allowed, as YYYYMMDDNNNC (12 digits)", s)
		}
	}
	if len(digits) != 12 {
		return "", Errorf(EINVALID, "personnummer %q: want 12 digits YYYYMMDDNNNC, got %d digits", s, len(digits))
	}
	id := PersonID(digits)
	if _, err := id.birthDate(); err != nil {
		return "", Errorf(EINVALID, "personnummer %q: %s", s, ErrorMessage(err))
	}
	if luhn(digits[2:11]) != digits[11]-'0' {
		return "", Errorf(EINVALID, "personnummer %q: check digit is %c, want %d: check for a typing error", s, digits[11], luhn(digits[2:11]))
	}
	return id, nil
}

// luhn returns the Luhn check digit for the digits (the 9 digits YYMMDDNNN).
func luhn(digits []byte) byte {
	sum := 0
	for i, c := range digits {
		d := int(c - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte((10 - sum%10) % 10)
}

// WithCheckDigit completes an 11-digit prefix YYYYMMDDNNN with its Luhn check
// digit. It is for generating benchmark identities only; fixtures and demos
// use Skatteverket's official test numbers.
func WithCheckDigit(prefix string) PersonID {
	return PersonID(prefix + string('0'+luhn([]byte(prefix[2:11]))))
}

// IsCoordinationNumber reports whether id is a samordningsnummer (day + 60).
func (id PersonID) IsCoordinationNumber() bool {
	return len(id) == 12 && id[6] >= '6'
}

// Female reports whether the number is a woman's: the second-to-last digit is even.
func (id PersonID) Female() bool {
	return len(id) == 12 && (id[10]-'0')%2 == 0
}

// BirthDate returns the date of birth encoded in the number (for a
// samordningsnummer, with 60 taken from the day).
func (id PersonID) BirthDate() time.Time {
	t, _ := id.birthDate()
	return t
}

func (id PersonID) birthDate() (time.Time, error) {
	if len(id) != 12 {
		return time.Time{}, Errorf(EINVALID, "want 12 digits")
	}
	s := string(id)
	year := atoi(s[0:4])
	month := atoi(s[4:6])
	day := atoi(s[6:8])
	if day >= 60 {
		// A samordningsnummer: day + 60, where month or day may be 00 when
		// Skatteverket does not know them; we then take the first.
		day -= 60
		if month == 0 {
			month = 1
		}
		if day == 0 {
			day = 1
		}
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if month < 1 || month > 12 || day < 1 || t.Day() != day {
		return time.Time{}, Errorf(EINVALID, "%s is not a valid date of birth", s[:8])
	}
	return t, nil
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// AgeAt returns the person's age in whole years on the date.
func (id PersonID) AgeAt(date time.Time) int {
	return AgeAt(id.BirthDate(), date)
}

// AgeAt returns the age in whole years of someone born on birth, on date.
func AgeAt(birth, date time.Time) int {
	age := date.Year() - birth.Year()
	if date.Month() < birth.Month() || date.Month() == birth.Month() && date.Day() < birth.Day() {
		age--
	}
	return age
}

// Person is a woman in a region's screening population. Only her identity
// number and region are held: name and address stay in the population register.
type Person struct {
	ID     PersonID `json:"person_id"`
	Region string   `json:"region"`
}
