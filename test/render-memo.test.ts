import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clearRenderMemo, renderContent, renderString, type TemplateVars } from '../src/core/render.js';
import { memoKey, memoReads } from '../src/core/render-memo.js';

// A remembered render must be exactly the render it replaces: same text, same failure, for any template
// and any variables, in any order.

const paths = [
  'profile.traits.first_name',
  'profile.traits.n',
  'profile.traits.name.size',
  'profile.traits.list.first',
  'profile.traits.obj.k',
  'profile.traits.obj',
  'profile.traits.obj.size',
  'profile.traits.obj.first',
  'profile.traits.size',
  'profile.traits',
  'profile.email',
  'event.properties.plan',
  'event.name',
  'journey.data.url',
  'data.x',
  'run.id',
  'nothing.here',
];
const filters = ['', ' | default: "there"', ' | upcase', ' | append: "!"', ' | plus: 1', ' | size', ' | default: profile.traits.n', ' | date: "%Y"', ' | default: event.name | upcase'];
const output = fc.tuple(fc.constantFrom(...paths), fc.constantFrom(...filters)).map(([p, f]) => `{{ ${p}${f} }}`);
const text = fc.constantFrom('Hi ', ', welcome', '!', ' ', 'plain', '\n');
const tag = fc.constantFrom('{% if profile.traits.n %}yes{% endif %}', '{% assign x = profile.traits.first_name %}{{ x | default: "?" }}', '{{ profile.traits["first_name"] | default: "-" }}');
const template = fc.array(fc.oneof(output, output, text, tag), { minLength: 1, maxLength: 5 }).map((parts) => parts.join(''));

const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const traits = fc.record(
  {
    first_name: maybe(fc.constantFrom<unknown>(null, '', 'Ann', 'Bob', 0, true, 'ann')),
    n: maybe(fc.constantFrom<unknown>(1, 2.5, '3', null, 0)),
    name: maybe(fc.constantFrom<unknown>('ab', 'abc', null)),
    list: maybe(fc.constantFrom<unknown>([], ['a'], ['b', 'c'])),
    obj: maybe(fc.constantFrom<unknown>({ k: 'v' }, { k: null }, { k: 'w' }, 'str', null)),
  },
  { requiredKeys: [] },
);
const vars: fc.Arbitrary<TemplateVars> = fc.record({
  profile: fc.record({ id: fc.constant('prf_1'), traits, email: fc.constantFrom<unknown>(null, 'a@example.com', 'b@example.com') }),
  event: fc.option(fc.record({ name: fc.constantFrom('Signed Up', 'Logged In'), properties: fc.record({ plan: maybe(fc.constantFrom('pro', 'free')) }, { requiredKeys: [] }) }), { nil: null }),
  journey: fc.constantFrom({ key: 'k', data: { url: 'https://a.example' } }, { key: 'k', data: { url: 'https://b.example' } }, { key: 'k', data: {} }),
  run: fc.constantFrom({ id: 'run_1' }, { id: 'run_2' }),
  data: maybe(fc.constantFrom({ x: 'one' }, { x: 2 }, {})),
}) as fc.Arbitrary<TemplateVars>;

describe('remembered renders', () => {
  it('equal fresh renders for any templates and variables, in any order (property)', () => {
    fc.assert(
      // A few templates, each rendered for several customers: remembered renders get their chance.
      fc.property(fc.array(template, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(fc.nat(), vars), { minLength: 2, maxLength: 12 }), (templates, picks) => {
        const calls = picks.map(([n, v]) => [templates[n % templates.length], v] as const);
        const remembered = calls.map(([t, v]) => renderString(t, v, 'f'));
        const fresh = calls.map(([t, v]) => {
          clearRenderMemo();
          return renderString(t, v, 'f');
        });
        expect(remembered).toEqual(fresh);
      }),
      { numRuns: 1500 },
    );
  });

  it('content objects too: every field, the first failure named', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(template, template, vars), { minLength: 1, maxLength: 8 }), (calls) => {
        const remembered = calls.map(([a, b, v]) => renderContent({ channel: 'email', subject: a, text: b }, v));
        const fresh = calls.map(([a, b, v]) => {
          clearRenderMemo();
          return renderContent({ channel: 'email', subject: a, text: b }, v);
        });
        expect(remembered).toEqual(fresh);
      }),
      { numRuns: 500 },
    );
  });

  it('only output-only templates with plain paths qualify', () => {
    const reads = (t: string, segments: unknown[][]) => memoReads(t, () => segments);
    expect(reads('Hi {{ profile.traits.first_name | default: "there" }}', [['profile', 'traits', 'first_name']])).toEqual([['profile', 'traits', 'first_name']]);
    expect(reads('{% if a %}x{% endif %}', [['a']])).toBeNull();
    expect(reads('{{ a["b"] }}', [['a', 'b']])).toBeNull();
    expect(reads('{{ "now" | date: "%Y" }}', [])).toBeNull();
    expect(reads('{{ a.size }}', [['a', 'size']])).toBeNull();
    expect(reads('{{ a[b] }}', [['a', ['b']]])).toBeNull();
  });

  it('keys differ whenever a value read differs, and renders through arrays, strings or cycles are not remembered', () => {
    const r = [['profile', 'traits', 'a'], ['profile', 'traits', 'b']];
    const key = (traits: Record<string, unknown>) => memoKey({ profile: { traits } }, r, 32);
    expect(key({ a: 'x\u0000', b: 'y' })).not.toBe(key({ a: 'x', b: '\u0000y' }));
    expect(key({ a: '1', b: 'y' })).not.toBe(key({ a: 1, b: 'y' }));
    expect(key({ a: null, b: 'y' })).toBe(key({ b: 'y' }));
    expect(key({ a: 'x', b: 'y' })).toBe(key({ a: 'x', b: 'y', c: 'z' }));
    expect(memoKey({ profile: { traits: ['a'] } }, [['profile', 'traits', 'length']], 32)).toBeNull();
    expect(memoKey({ profile: { traits: 'abc' } }, [['profile', 'traits', 'length']], 32)).toBeNull();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(memoKey({ profile: cyclic }, [['profile', 'self', 'self', 'x']], 32)).toBeNull();
    expect(memoKey({ profile: { when: new Date(0) } }, [['profile', 'when']], 32)).toBeNull();
  });
});
