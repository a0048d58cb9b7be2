// Package mail is where abuse-responder meets mail servers: it watches the
// IMAP mailbox that receives AWS notices and approval replies, and composes
// and sends the summaries and replies over SMTP. The parsers that read a
// notice live in mail/notice and never touch the network.
//
// Reading is built around one promise: a message that reached the watched
// mailbox is handed to the daemon at least once and, with the store's dedup,
// acted on exactly once. The Watcher fetches with BODY.PEEK[], hands each
// message (or, from NewBatchWatcher, each fetched batch) to a deliver
// function that stores it durably, and only then moves it to the processed
// mailbox (or flags it \Seen) and advances a cursor of (UIDVALIDITY, last
// UID) kept by a CursorStore. A crash at any point means
// redelivery, never loss. Sent replies are appended to a Sent folder
// (AppendSent), so the outbox can ask the server (HasMessageID) whether a
// reply whose sending was not recorded really went out before sending it
// again.
//
// go-imap takes no context: every connection here is closed when its context
// ends, which is how cancellation reaches a blocked command.
package mail
