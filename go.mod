module github.com/lmsparse/lmsparse

go 1.26.8

require (
	github.com/x448/float16 v0.8.4
	golang.org/x/sys v0.50.0
)

require github.com/spf13/pflag v1.1.0
