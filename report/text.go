package report

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/fatih/color"

	"parity/engine"
	"parity/verify"
)

// Style decides whether the text output uses colour.
type Style struct {
	Color bool
}

func (s Style) paint(text string, attrs ...color.Attribute) string {
	if !s.Color {
		return text
	}
	c := color.New(attrs...)
	c.EnableColor()
	return c.Sprint(text)
}

// verdict returns the verdict in capitals, padded to width before any colour is added.
func (s Style) verdict(v verify.Verdict, width int) string {
	text := fmt.Sprintf("%-*s", width, strings.ToUpper(string(v)))
	switch v {
	case verify.Consistent, verify.Pass:
		return s.paint(text, color.FgGreen, color.Bold)
	case verify.Inconsistent, verify.Fail:
		return s.paint(text, color.FgRed, color.Bold)
	}
	return s.paint(text, color.FgYellow, color.Bold)
}

// WriteText writes the run's report for a person: a header, the proof block, the load's
// figures, the settlement and every check, with witnesses for the failed ones.
func WriteText(w io.Writer, r *Run, s Style) error {
	p := &printer{w: w}
	writeHeader(p, r, s)
	writeProof(p, r, s)
	writeLoad(p, r)
	writeSettlement(p, r)
	writeChecks(p, r.Checks, s)
	return p.err
}

// WriteProofText writes a proof document for a person: what was audited, the books'
// figures, the verdict and every check, with witnesses for the failed ones.
func WriteProofText(w io.Writer, pr *verify.Proof, s Style) error {
	p := &printer{w: w}
	p.linef("%s", s.paint(fmt.Sprintf("Parity: audit of namespace %s", pr.Namespace), color.Bold))
	if pr.Sabotage != "" {
		p.linef("%s", s.paint(fmt.Sprintf("SABOTAGED ENGINE (%s): the run that made this namespace "+
			"was broken on purpose", pr.Sabotage), color.FgRed, color.Bold))
	}
	p.linef("  scenario   %s", pr.Scenario)
	p.linef("  backend    %s", pr.Backend)
	p.linef("  phase      %s, audited at %s", pr.Phase, pr.At.Format("2006-01-02 15:04:05 MST"))
	p.linef("")
	p.linef("Books")
	p.linef("  orders             %s", Count(pr.Orders))
	p.linef("  trades             %s", Count(pr.Trades))
	p.linef("  ledger imbalance   %s", Cents(pr.LedgerImbalance))
	p.linef("  deposits           %s", Cents(pr.Deposits))
	p.linef("  cash               %s", Cents(pr.Cash))
	p.linef("  negative balances  %s", Count(pr.NegativeBalances))
	p.linef("  verdict            %s", s.verdict(pr.Verdict, 0))
	p.linef("")
	writeChecks(p, pr.Checks, s)
	return p.err
}

// printer writes formatted lines and keeps the first error, so that rendering code reads
// as a sequence of lines.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) linef(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func writeHeader(p *printer, r *Run, s Style) {
	title := fmt.Sprintf("Parity: scenario %s, seed %d", r.Scenario, r.Seed)
	p.linef("%s", s.paint(title, color.Bold))
	if r.Sabotage != "" {
		p.linef("%s", s.paint(fmt.Sprintf("SABOTAGED ENGINE (%s): this run is broken on purpose "+
			"to show that the audit catches it", r.Sabotage), color.FgRed, color.Bold))
	}
	p.linef("  target     %s", r.Target.Description)
	p.linef("  schema     %s, %s, namespace %s%s", r.Schema, r.Isolation, r.Namespace, keptNote(r))
	if r.Description != "" {
		p.linef("  scenario   %s", printable(r.Description))
	}
	p.linef("")
}

// printable drops control and bidirectional-formatting characters, so that text from a
// scenario file cannot move the cursor, change colours or reorder what the terminal shows.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, s)
}

// oneLine joins the lines of a message, such as a multi-line error, so that it fits one
// row of a table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(printable(strings.ReplaceAll(s, "\n", " "))), " ")
}

func keptNote(r *Run) string {
	if r.Kept {
		return " (kept)"
	}
	return " (dropped)"
}

func writeProof(p *printer, r *Run, s Style) {
	p.linef("Proof")
	p.linef("  orders fired       %s of %s, concurrency %d", Count(r.Orders.Fired), Count(r.Orders.Total), r.Concurrency)
	p.linef("  markets            %s", Count(r.Markets))
	p.linef("  accounts           %s", Count(r.Accounts))
	p.linef("  trades             %s (%s contracts)", Count(r.Trades), Count(r.Contracts))
	p.linef("  ledger sum         %s", Cents(r.Ledger.Sum))
	p.linef("  cash before        %s", Cents(r.Ledger.CashBefore))
	p.linef("  cash after         %s", Cents(r.Ledger.CashAfter))
	p.linef("  negative balances  %s", Count(r.Ledger.Negative))
	if c, ok := findCheck(r.Checks, "mid-run-snapshots"); ok {
		p.linef("  mid-run snapshots  %s taken, %s broke an invariant", Count(c.Checked), Count(c.Violations))
	}
	verdict := s.verdict(r.Verdict, 0)
	if r.Interrupted {
		verdict += " (interrupted)"
	}
	p.linef("  verdict            %s", verdict)
	if r.Sabotage != "" && r.Verdict == verify.Consistent {
		p.linef("  %s", s.paint("The sabotaged engine did no visible damage in this run: "+
			sabotageNeeds[r.Sabotage]+".", color.FgYellow))
	}
	p.linef("")
}

// sabotageNeeds holds, by sabotage kind, the condition the defect needs to do damage.
var sabotageNeeds = map[string]string{
	"lost-update":         "it needs two orders that touch one account from different markets at once, as in hot-account",
	"unconditional-debit": "it needs an account that is short of cash, as in hot-account",
	"split-fill":          fmt.Sprintf("it needs at least %d fills, so that a credit is dropped", engine.SplitFillFailEvery),
	"missing-entry":       "it needs at least one fill",
	"blind-retry":         "it needs a lost COMMIT reply for an order that had committed; raise --lose-commits",
}

func findCheck(checks []verify.Result, name string) (verify.Result, bool) {
	for _, c := range checks {
		if c.Name == name {
			return c, true
		}
	}
	return verify.Result{}, false
}

func writeLoad(p *printer, r *Run) {
	o := r.Orders
	p.linef("Orders      committed %s, skipped %s (own account short of cash), failed %s, gave up %s, unknown %s%s",
		Count(o.Committed), Count(o.Skipped), Count(o.Failed), Count(o.GaveUp), Count(o.Unknown),
		canceledNote(o))
	p.linef("Fills       %s skipped unfunded (buyer or seller short of cash)", Count(o.UnfundedFills))
	p.linef("Commits     %s cut with their reply or the COMMIT itself lost, %s resolved by lookup",
		Count(o.LostCommits), Count(o.Resolved))
	p.linef("Throughput  %s orders/s over %.2f s", decimal(r.Throughput), r.Durations.Load)
	p.linef("Latency     %s", latencyLine(r.Latency))
	p.linef("Attempts    %s", attemptsLine(r.Attempts))
	p.linef("Conflicts   %s", conflictsLine(r.Attempts))
	for i, e := range r.Errors {
		if i == 3 {
			p.linef("            ... and %d more kinds of error", len(r.Errors)-i)
			break
		}
		p.linef("Error       %s x %s", Count(e.Orders), oneLine(e.Message))
	}
	p.linef("")
}

func canceledNote(o Orders) string {
	if o.Canceled == 0 {
		return ""
	}
	return fmt.Sprintf(", canceled %s", Count(o.Canceled))
}

func latencyLine(l Latency) string {
	if l.Count == 0 {
		return "none recorded"
	}
	return fmt.Sprintf("p50 %s ms, p95 %s ms, p99 %s ms, max %s ms", ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max))
}

// ms formats milliseconds to three significant figures, the histograms' precision.
func ms(v float64) string {
	if v == 0 {
		return "0"
	}
	rounded, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	if err != nil {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(rounded, 'f', -1, 64)
}

// attemptsLine buckets the orders that committed by attempts: 1, 2, 3 and 4 or more.
func attemptsLine(a Attempts) string {
	var buckets [4]int64
	for k, n := range a.Distribution {
		attempts, err := strconv.Atoi(k)
		if err != nil || attempts < 1 {
			continue
		}
		buckets[min(attempts, 4)-1] += n
	}
	return fmt.Sprintf("1: %s, 2: %s, 3: %s, 4+: %s, gave up: %s (%s retries, %.2f s of backoff in all)",
		Count(buckets[0]), Count(buckets[1]), Count(buckets[2]), Count(buckets[3]),
		Count(a.GaveUp), Count(a.Retries), a.BackoffSeconds)
}

func conflictsLine(a Attempts) string {
	if len(a.Conflicts) == 0 {
		return "none"
	}
	labels := make([]string, 0, len(a.Conflicts))
	for label := range a.Conflicts {
		labels = append(labels, label)
	}
	slices.Sort(labels)
	parts := make([]string, len(labels))
	for i, label := range labels {
		parts[i] = fmt.Sprintf("%s: %s", label, Count(a.Conflicts[label]))
	}
	return strings.Join(parts, ", ")
}

func writeSettlement(p *printer, r *Run) {
	if len(r.Settlement) == 0 {
		p.linef("Settlement  not run")
		p.linef("")
		return
	}
	var paid, released int64
	outcomes := map[string]int{}
	for _, m := range r.Settlement {
		paid += m.Paid
		released += m.Released
		outcomes[strings.ToUpper(m.Outcome)]++
	}
	p.linef("Settlement  %s (%d YES, %d NO): %s paid to longs, %s collateral released",
		plural(int64(len(r.Settlement)), "market"), outcomes["YES"], outcomes["NO"], Cents(paid), Cents(released))
	p.linef("")
}

func writeChecks(p *printer, checks []verify.Result, s Style) {
	if len(checks) == 0 {
		p.linef("Checks      not run")
		return
	}
	p.linef("Checks")
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	for _, c := range checks {
		detail := c.Found
		if c.Verdict == verify.Unknown && c.Error != "" {
			detail = c.Error
		}
		p.linef("  %s %-*s  %s", s.verdict(c.Verdict, 7), width, c.Name, oneLine(detail))
		if c.Verdict != verify.Fail {
			continue
		}
		p.linef("          expected: %s", c.Expected)
		for _, w := range c.Witnesses {
			p.linef("          %s", witnessLine(w))
		}
		if extra := c.Violations - int64(len(c.Witnesses)); extra > 0 && len(c.Witnesses) > 0 {
			p.linef("          ... and %s more", Count(extra))
		}
	}
}

func witnessLine(w verify.Witness) string {
	values := make([]string, len(w.Values))
	for i, v := range w.Values {
		values[i] = fmt.Sprintf("%s %d", v.Name, v.Value)
	}
	name := w.Name
	if name != "" {
		name += " "
	}
	return fmt.Sprintf("%s %s(%s): %s", w.Kind, name, w.ID, strings.Join(values, ", "))
}

// Count formats n with thousands separators.
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}

// decimal formats v with one decimal and thousands separators.
func decimal(v float64) string {
	tenths := int64(v*10 + 0.5)
	return fmt.Sprintf("%s.%d", Count(tenths/10), tenths%10)
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return Count(n) + " " + noun + "s"
}

// Cents formats an amount of cents with thousands separators.
func Cents(n int64) string {
	return Count(n) + " cents"
}
