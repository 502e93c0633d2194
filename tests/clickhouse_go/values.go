package main

import (
	"fmt"
	"reflect"
	"time"
)

// newValue is a pointer to a fresh value of the driver's scan type for a column.
func newValue(t reflect.Type) any {
	return reflect.New(t).Interface()
}

// render prints a scanned value the way the test compares it: times in UTC RFC 3339 with nanoseconds,
// NULL as "NULL", everything else with fmt.
func render(v any) string {
	value := reflect.ValueOf(v).Elem()
	for value.Kind() == reflect.Pointer {
		if value.IsNil() {
			return "NULL"
		}
		value = value.Elem()
	}
	if t, ok := value.Interface().(time.Time); ok {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(value.Interface())
}
