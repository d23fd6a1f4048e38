package replica

import (
	"context"
	"fmt"
	"log/slog"
)

// raftLog adapts slog to raft.Logger for one group. raft's Info messages (elections, term
// changes: many with many groups) go to Debug; Fatal and Panic panic (a library never exits).
type raftLog struct{ l *slog.Logger }

func (r raftLog) emit(level slog.Level, msg string) {
	if r.l.Enabled(context.Background(), level) {
		r.l.Log(context.Background(), level, "raft: "+msg)
	}
}

func (r raftLog) Debug(v ...any)              { r.emit(slog.LevelDebug, fmt.Sprint(v...)) }
func (r raftLog) Debugf(f string, v ...any)   { r.emit(slog.LevelDebug, fmt.Sprintf(f, v...)) }
func (r raftLog) Info(v ...any)               { r.emit(slog.LevelDebug, fmt.Sprint(v...)) }
func (r raftLog) Infof(f string, v ...any)    { r.emit(slog.LevelDebug, fmt.Sprintf(f, v...)) }
func (r raftLog) Warning(v ...any)            { r.emit(slog.LevelWarn, fmt.Sprint(v...)) }
func (r raftLog) Warningf(f string, v ...any) { r.emit(slog.LevelWarn, fmt.Sprintf(f, v...)) }
func (r raftLog) Error(v ...any)              { r.emit(slog.LevelError, fmt.Sprint(v...)) }
func (r raftLog) Errorf(f string, v ...any)   { r.emit(slog.LevelError, fmt.Sprintf(f, v...)) }
func (r raftLog) Fatal(v ...any)              { r.Panic(v...) }
func (r raftLog) Fatalf(f string, v ...any)   { r.Panicf(f, v...) }
func (r raftLog) Panic(v ...any)              { r.die(fmt.Sprint(v...)) }
func (r raftLog) Panicf(f string, v ...any)   { r.die(fmt.Sprintf(f, v...)) }
func (r raftLog) die(s string)                { r.emit(slog.LevelError, s); panic(s) }
