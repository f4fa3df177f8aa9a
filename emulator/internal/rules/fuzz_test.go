package rules

import "testing"

func FuzzParseRules(f *testing.F) {
	f.Add([]byte(defaultRulesJSON))
	f.Add([]byte(`{"rules":[{"id":"a","conditions":[{"field":"custom.x","op":"in","value":[1,"a",true]}],"outcome":"BLOCK"}]}`))
	f.Add([]byte(`{"rules":[{"id":"a","actionCode":"*","priority":-3,"outcome":"REVIEW_REQUIRED"}],"defaultOutcome":"BLOCK"}`))
	f.Add([]byte(`{"rules":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"rules":[{"id":"a","conditions":[{"field":"custom.a.b","op":"gt","value":1e308}],"outcome":"ALLOW"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Parse(data)
		if err != nil {
			if rs != nil {
				t.Fatal("rules returned with an error")
			}
			return
		}
		// Whatever parsed must evaluate without panicking and give a known outcome.
		inputs := []Input{{}, {ActionCode: "withdrawal", Custom: map[string]any{"amount": 5000.0, "a": map[string]any{"b": 2.0}, "x": "a"}}, {ActionCode: "a", Email: "x@y.z", IsNewDevice: true, IsEnrolled: true}}
		for _, in := range inputs {
			if got, _ := rs.Evaluate(in); !IsOutcome(got) {
				t.Fatalf("outcome %q", got)
			}
		}
	})
}
