// Command chgo runs queries through clickhouse-go v2 over HTTP, as Grafana's ClickHouse datasource does,
// and prints each query's rows as JSON (values rendered with fmt), or its error.
//
// Usage: chgo <addr host:port> <user> <password> <database> < queries.json
// queries.json: [{"name": "...", "sql": "..."}]; output: [{"name": "...", "columns": [...], "rows": [[...]], "error": "..."}]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

type query struct {
	Name string `json:"name"`
	SQL  string `json:"sql"`
}

type result struct {
	Name    string     `json:"name"`
	Columns []string   `json:"columns,omitempty"`
	Rows    [][]string `json:"rows"`
	Error   string     `json:"error,omitempty"`
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: chgo <host:port> <user> <password> <database> < queries.json")
		os.Exit(2)
	}
	var queries []query
	if err := json.NewDecoder(os.Stdin).Decode(&queries); err != nil {
		fmt.Fprintln(os.Stderr, "queries:", err)
		os.Exit(2)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:    clickhouse.HTTP,
		Addr:        []string{os.Args[1]},
		Auth:        clickhouse.Auth{Username: os.Args[2], Password: os.Args[3], Database: os.Args[4]},
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionGZIP}, // as the Grafana datasource
		DialTimeout: 10 * time.Second,
		ReadTimeout: 60 * time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(1)
	}
	defer conn.Close()
	ctx := context.Background()
	if err := conn.Ping(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ping:", err)
		os.Exit(1)
	}
	out := []result{}
	for _, q := range queries {
		out = append(out, run(ctx, conn, q))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}

func run(ctx context.Context, conn clickhouse.Conn, q query) result {
	res := result{Name: q.Name, Rows: [][]string{}}
	rows, err := conn.Query(ctx, q.SQL)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer rows.Close()
	res.Columns = rows.Columns()
	types := rows.ColumnTypes()
	for rows.Next() {
		values := make([]any, len(types))
		for i, t := range types {
			values[i] = newValue(t.ScanType())
		}
		if err := rows.Scan(values...); err != nil {
			res.Error = err.Error()
			return res
		}
		row := make([]string, len(values))
		for i, v := range values {
			row[i] = render(v)
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		res.Error = err.Error()
	}
	return res
}
