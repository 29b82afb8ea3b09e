// The captured output of a patch run, kept as evidence: each command as it was run, its output and
// exit status, and what was concluded. Bounded, keeping the beginning and the end, because a
// package manager can print megabytes and the end is where failures are.
import type { CommandOutcome } from './sshSession.ts';

const half = 128 * 1024;

export class EvidenceLog {
  private head = '';
  private tail = '';
  private dropped = 0;

  command(display: string, r: CommandOutcome): void {
    const body = [r.stdout, r.stderr].filter((s) => s.trim() !== '').join('\n');
    this.add(`$ ${display}\n${body}${body ? '\n' : ''}[exit ${r.code ?? 'signal'}]\n`);
  }

  note(text: string): void {
    this.add(`# ${text}\n`);
  }

  text(): string {
    return this.dropped
      ? `${this.head}\n[… ${this.dropped} characters left out …]\n${this.tail}`
      : this.head + this.tail;
  }

  private add(text: string): void {
    const room = half - this.head.length;
    if (room > 0) {
      this.head += text.slice(0, room);
      text = text.slice(room);
    }
    if (!text) return;
    this.tail += text;
    if (this.tail.length > half) {
      this.dropped += this.tail.length - half;
      this.tail = this.tail.slice(-half);
    }
  }
}
