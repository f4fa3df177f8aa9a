package app

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// maxAmountCents caps what a form may ask for, far above any balance, so that the
// arithmetic never gets near overflow.
const maxAmountCents = 100_000_000_000 // 1 billion in currency units

// amountPattern accepts digits, or digits with thousands separators in groups of three
// ("1,250"), and at most two decimals. "1,50" is not $150: a comma anywhere else is refused.
var amountPattern = regexp.MustCompile(`^([0-9]{1,12}|[0-9]{1,3}(,[0-9]{3}){1,3})(\.[0-9]{1,2})?$`)

// parseAmount turns what a person types ("250", "1,250.5", "$40.00") into integer cents.
// Money is never held in floating point.
func parseAmount(raw string) (int64, error) {
	s := strings.TrimSpace(raw)
	s = strings.TrimPrefix(s, "$")
	if s == "" {
		return 0, errors.New("Enter an amount to withdraw.")
	}
	if strings.Contains(s, ",") && !amountPattern.MatchString(s) {
		return 0, errors.New("Use commas only between groups of three digits, like 1,250.50, or leave them out.")
	}
	if !amountPattern.MatchString(s) {
		return 0, errors.New("Enter an amount like 250 or 250.50 (at most two decimal places).")
	}
	s = strings.ReplaceAll(s, ",", "")
	whole, frac, _ := strings.Cut(s, ".")
	for len(frac) < 2 {
		frac += "0"
	}
	units, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, errors.New("Enter an amount like 250 or 250.50 (at most two decimal places).")
	}
	cents, _ := strconv.ParseInt(frac, 10, 64) // two digits, already matched
	if units > maxAmountCents/100 {
		return 0, errors.New("That amount is too large.")
	}
	total := units*100 + cents
	if total <= 0 {
		return 0, errors.New("Enter an amount greater than zero.")
	}
	return total, nil
}

// formatCents renders cents as dollars with thousands separators: 2500000 -> "$25,000.00".
func formatCents(cents int64) string {
	sign := ""
	if cents < 0 {
		sign = "-"
		cents = -cents
	}
	units := strconv.FormatInt(cents/100, 10)
	var grouped strings.Builder
	for i, r := range units {
		if i > 0 && (len(units)-i)%3 == 0 {
			grouped.WriteByte(',')
		}
		grouped.WriteRune(r)
	}
	return sign + "$" + grouped.String() + "." + leftPad2(cents%100)
}

func leftPad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// centsToUnits is the amount sent to Authsignal in custom.amount, which rules compare
// numerically (e.g. amount > 1000). Exact for every value parseAmount accepts.
func centsToUnits(cents int64) float64 {
	return float64(cents) / 100
}
