// Renders Grafana alerting templates with Go's text/template, the engine Grafana uses.
//
// stdin: {"templates": ["{{ define ... }}", ...], "text": "{{ template ... }}", "data": {...}, "rule": bool}
// stdout: the rendered text. With "rule", the text is an annotation template and gets the variables
// Grafana defines for those ($labels, $values, $value). Functions: the ones our templates call,
// with the semantics Grafana gives them (reReplaceAll = regexp.ReplaceAllString, RE2 syntax).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"text/template"
)

type input struct {
	Templates []string       `json:"templates"`
	Text      string         `json:"text"`
	Data      map[string]any `json:"data"`
	Rule      bool           `json:"rule"`
}

var funcs = template.FuncMap{
	"reReplaceAll": func(pattern, repl, text string) string {
		return regexp.MustCompile(pattern).ReplaceAllString(text, repl)
	},
	"toUpper":            strings.ToUpper,
	"humanize":           func(v float64) string { return fmt.Sprintf("%.4g", v) },
	"humanizePercentage": func(v float64) string { return fmt.Sprintf("%.4g%%", v*100) },
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	text := in.Text
	if in.Rule {
		text = "{{- $labels := .Labels -}}{{- $values := .Values -}}{{- $value := .Value -}}" + text
	}
	tmpl := template.New("root").Funcs(funcs)
	for _, t := range in.Templates {
		template.Must(tmpl.New("").Parse(t))
	}
	template.Must(tmpl.New("main").Parse(text))
	if err := tmpl.ExecuteTemplate(os.Stdout, "main", in.Data); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
