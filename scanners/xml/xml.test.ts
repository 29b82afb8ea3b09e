import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../domain/finding.ts';
import { childText, childTexts, readXml, sniffXmlRoot } from './index.ts';
import type { XmlEvent, XmlReadOptions } from './index.ts';

const fixtures = path.resolve(import.meta.dirname, '../../test/fixtures/scans');

async function events(input: Readable, opts: Partial<XmlReadOptions> = {}): Promise<XmlEvent[]> {
  const out: XmlEvent[] = [];
  for await (const e of readXml(input, { file: 'test.xml', select: [], ...opts })) out.push(e);
  return out;
}

async function failure(input: Readable, opts: Partial<XmlReadOptions> = {}): Promise<InputError> {
  try {
    await events(input, opts);
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error('expected an InputError');
}

/** One Buffer chunk per element of `parts`. */
function chunks(...parts: (string | Buffer)[]): Readable {
  return Readable.from(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
}

const REPORT = `<?xml version="1.0"?>
<Root>
  <Policy><name>ignored text</name></Policy>
  <Host name="a">
    <Props><tag name="ip">10.0.0.1</tag></Props>
    <Item id="1"><title>Fish &amp; chips &lt;3</title><out><![CDATA[<raw> & kept]]></out><cve>CVE-1</cve><cve>CVE-2</cve></Item>
    <Item id="2"/>
  </Host>
</Root>`;

const SELECT = [
  { path: 'Host/Props', as: 'record' as const },
  { path: 'Host/Item', as: 'record' as const },
  { path: '/Root/Host', as: 'container' as const },
];

describe('readXml', () => {
  it('yields containers and records in document order, with entities and CDATA decoded', async () => {
    const evs = await events(chunks(REPORT), { select: SELECT });
    expect(evs.map((e) => (e.kind === 'record' ? `record:${e.element.name}` : `${e.kind}`))).toEqual([
      'root',
      'open',
      'record:Props',
      'record:Item',
      'record:Item',
      'close',
    ]);
    const open = evs[1];
    expect(open?.kind === 'open' && open.attrs.name).toBe('a');
    const item = evs[3];
    if (item?.kind !== 'record') throw new Error('expected a record');
    expect(item.element.attrs.id).toBe('1');
    expect(childText(item.element, 'title')).toBe('Fish & chips <3');
    expect(childText(item.element, 'out')).toBe('<raw> & kept');
    expect(childTexts(item.element, 'cve')).toEqual(['CVE-1', 'CVE-2']);
    expect(item.element.line).toBe(6);
  });

  it('gives the same result whatever the chunking, even splitting multi-byte characters', async () => {
    const doc = Buffer.from('<r><i n="é">naïve — 漢字 😀</i><i n="b">x</i></r>');
    const oneByteChunks = Readable.from([...doc].map((b) => Buffer.from([b])));
    const evs = await events(oneByteChunks, { select: [{ path: 'r/i', as: 'record' }] });
    const records = evs.flatMap((e) => (e.kind === 'record' ? [e.element] : []));
    expect(records.map((r) => [r.attrs.n, r.text])).toEqual([
      ['é', 'naïve — 漢字 😀'],
      ['b', 'x'],
    ]);
  });

  it('pulls input only as fast as the consumer takes records (backpressure)', async () => {
    let pulled = 0;
    async function* endless(): AsyncGenerator<Buffer> {
      yield Buffer.from('<r>');
      for (;;) {
        pulled++;
        yield Buffer.from('<i>x</i>'.repeat(100));
      }
    }
    const source = Readable.from(endless());
    let taken = 0;
    for await (const e of readXml(source, { file: 'endless.xml', select: [{ path: 'r/i', as: 'record' }] })) {
      if (e.kind === 'record' && ++taken === 250) break;
    }
    // 250 records need 3 chunks; the stream's own read-ahead adds a few, never the endless rest.
    expect(pulled).toBeLessThan(40);
    expect(source.destroyed).toBe(true);
  });

  // That it stops reading at the DOCTYPE, however much follows, is pinned in test/ingest/hostile.test.ts.
  it('refuses an entity-expansion bomb before parsing it', async () => {
    const err = await failure(Readable.from(readFileSync(path.join(fixtures, 'xml-billion-laughs.xml'))));
    expect(err.message).toMatch(/DOCTYPE with an internal subset/);
    expect(err.line).toBe(2);
  });

  it('refuses an entity-expansion bomb even when the DOCTYPE arrives one byte at a time', async () => {
    const bytes = readFileSync(path.join(fixtures, 'xml-billion-laughs.xml'));
    const err = await failure(Readable.from([...bytes].map((b) => Buffer.from([b]))));
    expect(err.message).toMatch(/internal subset/);
  });

  it('refuses an external entity (XXE) declaration', async () => {
    const err = await failure(Readable.from(readFileSync(path.join(fixtures, 'xml-xxe.xml'))));
    expect(err.message).toMatch(/XXE/);
    expect(err.file).toBe('test.xml');
  });

  it('never resolves entities from an external DTD: they are undefined', async () => {
    const err = await failure(
      Readable.from(readFileSync(path.join(fixtures, 'xml-external-dtd-entity.xml'))),
      {
        select: [{ path: 'host', as: 'record' }],
      },
    );
    expect(err.message).toMatch(/undefined entity \(only the five XML entities are allowed\)/);
    expect(err.line).toBe(5);
  });

  it('accepts a DOCTYPE that declares nothing, as Nmap and Qualys write it', async () => {
    const evs = await events(chunks('<?xml version="1.0"?>\n<!DOCTYPE nmaprun>\n<nmaprun/>'));
    expect(evs).toEqual([{ kind: 'root', name: 'nmaprun', attrs: {}, line: 3 }]);
    const qualys = await events(
      chunks('<!DOCTYPE SCAN SYSTEM "https://qualysguard.example/scan-1.dtd"><SCAN/>'),
    );
    expect(qualys[0]?.kind === 'root' && qualys[0].name).toBe('SCAN');
  });

  it('refuses a gigantic text node after reading little more than the cap', async () => {
    let pulledMiB = 0;
    async function* huge(): AsyncGenerator<Buffer> {
      yield Buffer.from('<r><i>');
      const mib = Buffer.alloc(1024 * 1024, 'A');
      for (; pulledMiB < 1024; pulledMiB++) yield mib;
      yield Buffer.from('</i></r>');
    }
    const err = await failure(Readable.from(huge()), { select: [{ path: 'r/i', as: 'record' }] });
    expect(err.message).toMatch(/longer than 8388608 characters/);
    expect(pulledMiB).toBeLessThanOrEqual(12);
  });

  it('refuses a gigantic attribute the same way, outside records too', async () => {
    let pulledMiB = 0;
    async function* huge(): AsyncGenerator<Buffer> {
      yield Buffer.from('<r><i a="');
      const mib = Buffer.alloc(1024 * 1024, 'B');
      for (; pulledMiB < 1024; pulledMiB++) yield mib;
      yield Buffer.from('"/></r>');
    }
    const err = await failure(Readable.from(huge()));
    expect(err.message).toMatch(/longer than/);
    expect(pulledMiB).toBeLessThanOrEqual(12);
  });

  it('caps records by size and nesting depth', async () => {
    const big = `<r><i>${'<x>abcdefghij</x>'.repeat(200)}</i></r>`;
    const tooBig = await failure(chunks(big), {
      select: [{ path: 'r/i', as: 'record' }],
      limits: { maxRecordChars: 1000 },
    });
    expect(tooBig.message).toMatch(/<i> starting at line 1 is larger than 1000 characters/);
    const deep = await failure(chunks(`${'<a>'.repeat(300)}${'</a>'.repeat(300)}`));
    expect(deep.message).toMatch(/nested deeper than 256/);
  });

  it('says a truncated document is truncated, with the line it stopped at', async () => {
    const err = await failure(Readable.from(readFileSync(path.join(fixtures, 'nessus-truncated.nessus'))));
    expect(err.message).toMatch(/ends inside <description>: the file is truncated/);
    expect(err.line).toBe(13);
  });

  it('says non-XML and empty input are not XML', async () => {
    expect(
      (await failure(Readable.from(readFileSync(path.join(fixtures, 'not-xml.nessus'))))).message,
    ).toMatch(/not an XML document/);
    expect((await failure(chunks('Plugin ID,CVE,Host\n1,,10.0.0.1\n'))).message).toMatch(
      /not an XML document/,
    );
    expect((await failure(Readable.from([]))).message).toMatch(/empty or is not an XML document/);
  });

  it('names the expected and the actual root element for a wrong format', async () => {
    const err = await failure(chunks('<nmaprun scanner="nmap"></nmaprun>'), {
      roots: ['NessusClientData_v2'],
      describe: 'a Nessus report',
    });
    expect(err.message).toBe(
      'test.xml, line 1, column 25: expected a Nessus report (root element <NessusClientData_v2>) but the root element is <nmaprun>',
    );
  });

  it('reports malformed XML with file, line and column', async () => {
    const err = await failure(chunks('<r>\n  <a>\n  </b>\n</r>'));
    expect(err.message).toMatch(/^test\.xml, line 3, column \d+: malformed XML: unexpected close tag/);
    expect(err.line).toBe(3);
  });

  it('decodes the encoding the XML declaration names, and UTF-16 with a byte-order mark', async () => {
    const latin1 = Buffer.concat([
      Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?><r><i>caf'),
      Buffer.from([0xe9]),
      Buffer.from('</i></r>'),
    ]);
    const a = await events(Readable.from([latin1]), { select: [{ path: 'r/i', as: 'record' }] });
    expect(a[1]?.kind === 'record' && a[1].element.text).toBe('café');
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<r><i>ünï</i></r>', 'utf16le')]);
    const b = await events(Readable.from([utf16]), { select: [{ path: 'r/i', as: 'record' }] });
    expect(b[1]?.kind === 'record' && b[1].element.text).toBe('ünï');
    const unknown = await failure(chunks('<?xml version="1.0" encoding="x-klingon"?><r/>'));
    expect(unknown.message).toMatch(/unsupported XML encoding "x-klingon"/);
  });
});

describe('sniffXmlRoot', () => {
  it('finds the root element past the declaration, comments, PIs and DOCTYPE', () => {
    expect(
      sniffXmlRoot(
        '<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE nmaprun>\n<?xml-stylesheet href="x"?>\n<nmaprun a="1">',
      ),
    ).toBe('nmaprun');
    expect(sniffXmlRoot('  <NessusClientData_v2>')).toBe('NessusClientData_v2');
  });

  it('returns undefined for non-XML heads', () => {
    expect(sniffXmlRoot('{"a": 1}')).toBeUndefined();
    expect(sniffXmlRoot('Plugin ID,CVE\n<b>')).toBeUndefined();
    expect(sniffXmlRoot('<!-- never closed')).toBeUndefined();
  });
});
