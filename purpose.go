package bildrum

// Purpose is why data are used. Care is primary use; the rest are the
// secondary purposes of the government assignment (S2021/05259) and the EHDS.
// Recruitment (trial contact) is opt-in; every other secondary purpose is
// allowed unless the person opted out of it.
type Purpose string

// The purposes, as used in APIs, the consent register and the log.
const (
	PurposeCare        Purpose = "care"
	PurposeResearch    Purpose = "research"
	PurposeStatistics  Purpose = "statistics"
	PurposeInnovation  Purpose = "innovation" // including training and testing AI
	PurposeQuality     Purpose = "quality"    // kvalitetsuppföljning
	PurposeGovernance  Purpose = "governance" // myndighetsstyrning
	PurposeSupervision Purpose = "supervision"
	PurposeEducation   Purpose = "education"
	PurposeRecruitment Purpose = "recruitment" // trial contact, opt-in only
)

// Purposes returns every purpose, care first.
func Purposes() []Purpose {
	return []Purpose{PurposeCare, PurposeResearch, PurposeStatistics, PurposeInnovation,
		PurposeQuality, PurposeGovernance, PurposeSupervision, PurposeEducation, PurposeRecruitment}
}

// Secondary reports whether p is a secondary use (anything but care).
func (p Purpose) Secondary() bool { return p != PurposeCare }

// ParsePurpose checks that s names a purpose.
func ParsePurpose(s string) (Purpose, error) {
	for _, p := range Purposes() {
		if string(p) == s {
			return p, nil
		}
	}
	return "", Errorf(EINVALID, "unknown purpose %q: use one of care, research, statistics, innovation, quality, governance, supervision, education, recruitment", s)
}
