module github.com/abuse-responder/abuse-responder

go 1.26

require (
	github.com/emersion/go-message v0.18.2
	github.com/pelletier/go-toml/v2 v2.4.3
)

require golang.org/x/text v0.14.0 // indirect
