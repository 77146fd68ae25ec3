module example.com/lmsparse-user

go 1.26.8

require github.com/lmsparse/lmsparse v0.0.0

replace github.com/lmsparse/lmsparse => ../..
