package web

import (
	"html/template"
	"log/slog"
	"net/http"
	"slices"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
)

// Citizen serves "Mina data", a woman's own page: her choices about her
// data, in Swedish or English, and (with the transparency log) how her data
// were used, with proofs her browser checks itself.
type Citizen struct {
	Register bildrum.ConsentStore
	Auth     *auth.Authenticator
	Log      *slog.Logger
	// Events, when set, is the address of her events API shown on the page.
	Events string
	// Inbox, when set, is the address of her invitations API
	// (/api/v1/me/invitations, served by Recruitment): the page then shows
	// her inbox of invitations to studies.
	Inbox string

	page *template.Template
}

// Routes adds /me to mux.
func (c *Citizen) Routes(mux *http.ServeMux) {
	c.page = parse("citizen.html")
	mux.HandleFunc("GET /me", c.minaData)
}

// text is a phrase in Swedish and English.
type text struct{ Sv, En string }

func (t text) In(lang string) string {
	if lang == "en" {
		return t.En
	}
	return t.Sv
}

// purposeTexts explain each secondary purpose in plain words.
var purposeTexts = map[bildrum.Purpose][2]text{
	bildrum.PurposeResearch: {{"Forskning", "Research"}, {
		"Forskare får använda uppgifter utan namn och personnummer, efter etikprövning och ett tillstånd, till exempel för att förstå varför vissa cancrar upptäcks sent.",
		"Researchers may use data without names or identity numbers, after ethical review and a permit, for example to learn why some cancers are found late."}},
	bildrum.PurposeStatistics: {{"Statistik", "Statistics"}, {
		"Myndigheter tar fram officiell statistik om screening och bröstcancer i hela landet.",
		"Government agencies produce official statistics on screening and breast cancer across the country."}},
	bildrum.PurposeInnovation: {{"Innovation och AI", "Innovation and AI"}, {
		"Regioner och företag får utveckla och pröva nya metoder, till exempel AI som hjälper till att granska mammografibilder.",
		"Regions and companies may develop and test new methods, for example AI that helps read mammograms."}},
	bildrum.PurposeQuality: {{"Kvalitetsuppföljning", "Quality follow-up"}, {
		"Regionerna jämför hur väl screeningen fungerar, så att den blir lika bra i hela landet.",
		"The regions compare how well screening works, so that it is equally good everywhere."}},
	bildrum.PurposeGovernance: {{"Styrning", "Governance"}, {
		"Myndigheter följer upp och planerar vården.",
		"Agencies follow up and plan health care."}},
	bildrum.PurposeSupervision: {{"Tillsyn", "Supervision"}, {
		"IVO och IMY granskar att vården och dataskyddet sköts rätt.",
		"The supervisory authorities check that care and data protection are done right."}},
	bildrum.PurposeEducation: {{"Utbildning", "Education"}, {
		"Blivande röntgenläkare och röntgensjuksköterskor övar på bilder.",
		"Radiologists and radiographers in training practise on images."}},
}

// pageText is the page's fixed wording.
var pageText = map[string]text{
	"title":      {"Mina data", "My data"},
	"lead":       {"Här bestämmer du hur dina mammografiuppgifter får användas utöver din egen vård, och ser hur de har använts.", "Here you decide how your mammography data may be used beyond your own care, and see how they have been used."},
	"choices":    {"Dina val", "Your choices"},
	"allowed":    {"Tillåts", "Allowed"},
	"trial":      {"Kontakt om kliniska studier", "Contact about clinical trials"},
	"trialText":  {"Om du vill kan forskare med en godkänd studie bjuda in dig via din inkorg här. Dina kontaktuppgifter lämnas ut först när du själv tackar ja.", "If you wish, researchers with an approved study may invite you through your inbox here. Your contact details are passed on only when you accept."},
	"trialOptIn": {"Jag vill kunna bli inbjuden", "I want to be invited"},
	"email":      {"E-post", "E-mail"},
	"phone":      {"Telefon", "Phone"},
	"care":       {"Delning för din vård", "Sharing for your care"},
	"careText":   {"Röntgenläkare kan se dina tidigare mammografier från andra regioner när du undersöks. Du kan spärra regioner.", "Radiologists can see your earlier mammograms from other regions when you are examined. You can block regions."},
	"blockAll":   {"Spärra alla regioner", "Block every region"},
	"save":       {"Spara mina val", "Save my choices"},
	"saved":      {"Sparat. Dina val gäller nu i:", "Saved. Your choices now apply in:"},
	"version":    {"Version", "Version"},
	"never":      {"Du har inte gjort några val: allt utom kontakt om studier är tillåtet.", "You have made no choices: everything except trial contact is allowed."},
	"events":     {"Hur dina data har använts", "How your data have been used"},
	"eventsText": {"Varje gång någon använder dina uppgifter skrivs det i en öppen logg som ingen kan ändra i efterhand. Din webbläsare kontrollerar själv beviset för varje händelse.", "Every time anyone uses your data, it is written to an open log that nobody can change afterwards. Your browser checks the proof of each event itself."},
	"signout":    {"Logga ut", "Sign out"},
	"otherLang":  {"In English", "På svenska"},

	// Her inbox of invitations to studies (inbox.js fills it).
	"inbox":         {"Inbjudningar till studier", "Invitations to studies"},
	"inboxText":     {"Forskare med en godkänd studie kan bjuda in dig här. Forskaren vet inte vem du är förrän du själv tackar ja.", "Researchers with an approved study can invite you here. The researcher does not know who you are unless you accept."},
	"inboxWithdraw": {"Stänger du av kontakt om studier dras dina obesvarade inbjudningar tillbaka.", "If you turn off contact about trials, your unanswered invitations are withdrawn."},
	"inboxEmpty":    {"Du har inga inbjudningar.", "You have no invitations."},
	"inboxOne":      {"Du har en inbjudan till en studie att svara på.", "You have an invitation to a study to answer."},
	"inboxMany":     {"Du har {n} inbjudningar till studier att svara på.", "You have {n} invitations to studies to answer."},
	"inboxLoading":  {"Hämtar dina inbjudningar …", "Fetching your invitations …"},
	"invSponsor":    {"Sponsor", "Sponsor"},
	"invWho":        {"Vem frågar", "Who asks"},
	"invEthics":     {"Etikgodkännande", "Ethics approval"},
	"invEnds":       {"Svara senast", "Answer by"},
	"invReceived":   {"Mottagen", "Received"},
	"invText":       {"Inbjudan", "The invitation"},
	"why":           {"Varför fick jag den här?", "Why did I get this?"},
	"whyNote":       {"Ingen uppgift om dig lämnades till forskaren för att skicka inbjudan: bara du ser den.", "Nothing about you was given to the researcher to send this invitation: only you see it."},
	"accept":        {"Ja, jag vill delta", "Yes, I want to take part"},
	"decline":       {"Nej tack", "No, thank you"},
	"acceptNote":    {"Tackar du ja får forskaren dessa kontaktuppgifter, och inget annat om dig:", "If you accept, the researcher receives these contact details, and nothing else about you:"},
	"noContact":     {"inga: lägg till e-post eller telefon under Kontakt om kliniska studier", "none: add an e-mail address or phone number under Contact about clinical trials"},
	"passedOn":      {"Dessa kontaktuppgifter lämnades till forskaren:", "These contact details were passed on to the researcher:"},
	"stPending":     {"Obesvarad", "Not answered"},
	"stAccepted":    {"Du tackade ja", "You accepted"},
	"stDeclined":    {"Du tackade nej", "You declined"},
	"stWithdrawn":   {"Återkallad: du stängde av kontakt om studier", "Withdrawn: you turned off contact about trials"},
	"stClosed":      {"Studien tar inte längre emot svar", "The study no longer takes answers"},
	"answeredOn":    {"den", "on"},
}

// purposeRow is one purpose on her page.
type purposeRow struct {
	Purpose    bildrum.Purpose
	Name, Text string
	Allowed    bool
}

// regionRow is one region she may block.
type regionRow struct {
	bildrum.Region
	Blocked bool
}

func (c *Citizen) minaData(w http.ResponseWriter, r *http.Request) {
	p, ok := pagePrincipal(w, r, c.Auth, bildrum.RoleCitizen)
	if !ok {
		return
	}
	lang := "sv"
	if r.URL.Query().Get("lang") == "en" {
		lang = "en"
	}
	rec, err := c.Register.Consent(r.Context(), p.Person)
	if err != nil {
		http.Error(w, bildrum.ErrorMessage(err), http.StatusInternalServerError)
		return
	}
	var purposes []purposeRow
	for _, pu := range bildrum.Purposes() {
		t, ok := purposeTexts[pu]
		if !ok {
			continue
		}
		purposes = append(purposes, purposeRow{Purpose: pu, Name: t[0].In(lang), Text: t[1].In(lang), Allowed: !slices.Contains(rec.Choices.OptOuts, pu)})
	}
	var regions []regionRow
	for _, reg := range bildrum.Regions() {
		regions = append(regions, regionRow{Region: reg, Blocked: slices.Contains(rec.Choices.CareBlocks, reg.Code)})
	}
	t := map[string]string{}
	for k, v := range pageText {
		t[k] = v.In(lang)
	}
	other := "en"
	if lang == "en" {
		other = "sv"
	}
	render(w, r, c.Log, c.page, struct {
		Lang, OtherLang string
		T               map[string]string
		Person          bildrum.PersonID
		Record          bildrum.ConsentRecord
		Purposes        []purposeRow
		Regions         []regionRow
		BlockAll        bool
		Events          string
		Inbox           string
	}{lang, other, t, p.Person, rec, purposes, regions, slices.Contains(rec.Choices.CareBlocks, bildrum.AllRegions), c.Events, c.Inbox})
}
