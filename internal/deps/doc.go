// Package deps holds no code: its test keeps the module's production
// packages apart from its fakes and test support (see the README's layout
// table).
package deps
