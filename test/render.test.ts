// Tests of message content rendering (src/core/render.ts): LiquidJS with strict variables, defaults,
// lenient ifs, no file system, no prototype access and bounded work.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkTemplate,
  renderContent,
  renderString,
  type ChannelContent,
  type RenderResult,
  type TemplateVars,
} from '../src/core/render.js';

const vars: TemplateVars = {
  profile: {
    id: 'prof_1',
    email: 'ada@example.com',
    phone: null,
    timezone: 'Europe/London',
    locale: 'en',
    traits: { first_name: 'Ada', plan: 'pro', vip: true, tags: ['a', 'b'], address: { city: 'London' }, nothing: null },
  },
  event: { name: 'Signed Up', properties: { plan: 'starter', amount: 42 }, timestamp: '2024-03-05T14:30:00.000Z' },
  journey: { key: 'onboarding', name: 'Onboarding', version: 3, data: { support_url: 'https://example.com/help' } },
  run: { id: 'run_1', enteredAt: '2024-03-05T14:31:00.000Z' },
};

const noEvent: TemplateVars = { ...vars, event: null };

function ok<T>(r: RenderResult<T>): T {
  if (!r.ok) throw new Error(`expected ok, got: ${r.reason}`);
  return r.value;
}

function reason<T>(r: RenderResult<T>): string {
  if (r.ok) throw new Error(`expected a failure, got: ${JSON.stringify(r.value)}`);
  return r.reason;
}

describe('renderContent: every channel shape', () => {
  it('email', () => {
    const content: ChannelContent = {
      channel: 'email',
      subject: 'Welcome, {{ profile.traits.first_name }}',
      text: 'Thanks for signing up on the {{ event.properties.plan }} plan.',
      html: '<p>Help: <a href="{{ journey.data.support_url }}">here</a></p>',
    };
    expect(ok(renderContent(content, vars))).toEqual({
      channel: 'email',
      subject: 'Welcome, Ada',
      text: 'Thanks for signing up on the starter plan.',
      html: '<p>Help: <a href="https://example.com/help">here</a></p>',
    });
  });

  it('sms', () => {
    const content: ChannelContent = { channel: 'sms', text: 'Hi {{ profile.traits.first_name }}, run {{ run.id }}' };
    expect(ok(renderContent(content, vars))).toEqual({ channel: 'sms', text: 'Hi Ada, run run_1' });
  });

  it('whatsapp text and template with parameters', () => {
    const text: ChannelContent = { channel: 'whatsapp', text: '{{ journey.name }} v{{ journey.version }}' };
    expect(ok(renderContent(text, vars))).toEqual({ channel: 'whatsapp', text: 'Onboarding v3' });

    const tpl: ChannelContent = {
      channel: 'whatsapp',
      template: 'welcome_v2',
      language: '{{ profile.locale }}',
      parameters: ['{{ profile.traits.first_name }}', '{{ event.properties.amount | plus: 1 }}', 'static'],
    };
    expect(ok(renderContent(tpl, vars))).toEqual({
      channel: 'whatsapp',
      template: 'welcome_v2',
      language: 'en',
      parameters: ['Ada', '43', 'static'],
    });
  });

  it('push', () => {
    const content: ChannelContent = {
      channel: 'push',
      title: 'Hey {{ profile.traits.first_name | upcase }}',
      body: 'Your plan: {{ profile.traits.plan }}',
      url: 'app://plans/{{ profile.traits.plan }}',
    };
    expect(ok(renderContent(content, vars))).toEqual({
      channel: 'push',
      title: 'Hey ADA',
      body: 'Your plan: pro',
      url: 'app://plans/pro',
    });
  });

  it('in_app with a nested cta', () => {
    const content: ChannelContent = {
      channel: 'in_app',
      title: 'Tip',
      body: '{% if profile.traits.vip %}VIP {% endif %}{{ profile.traits.first_name }}',
      cta: { label: 'Go to {{ profile.traits.address.city }}', url: '{{ journey.data.support_url }}?p={{ profile.id }}' },
    };
    expect(ok(renderContent(content, vars))).toEqual({
      channel: 'in_app',
      title: 'Tip',
      body: 'VIP Ada',
      cta: { label: 'Go to London', url: 'https://example.com/help?p=prof_1' },
    });
  });

  it('keeps the channel tag and non-string values, and does not mutate the input', () => {
    const content = { channel: 'sms', text: '{{ profile.id }}', n: 3, flag: true, none: null };
    const copy = structuredClone(content);
    expect(ok(renderContent(content, vars))).toEqual({ channel: 'sms', text: 'prof_1', n: 3, flag: true, none: null });
    expect(content).toEqual(copy);
  });

  it('names the failing field, including array items and nested objects', () => {
    expect(reason(renderContent({ channel: 'email', subject: 'Hi {{ profile.traits.first_nam }}' }, vars))).toBe(
      'template error in email.subject: undefined variable "profile.traits.first_nam"; ' +
        'give it a default with | default: "…" or set the trait',
    );
    expect(
      reason(renderContent({ channel: 'whatsapp', template: 't', parameters: ['ok', '{{ event.properties.nope }}'] }, vars)),
    ).toMatch(/^template error in whatsapp\.parameters\[1\]: undefined variable "event\.properties\.nope"/);
    expect(
      reason(renderContent({ channel: 'in_app', title: 't', body: 'b', cta: { label: 'l', url: '{{ run.nope }}' } }, vars)),
    ).toMatch(/^template error in in_app\.cta\.url: undefined variable "run\.nope"/);
  });
});

describe('missing variables', () => {
  it('a bare missing variable fails with the field and the variable named', () => {
    const r = renderString('Welcome, {{ profile.traits.first_name }}', { ...vars, profile: { id: 'p', traits: {} } }, 'email.subject');
    expect(reason(r)).toBe(
      'template error in email.subject: undefined variable "profile.traits.first_name"; ' +
        'give it a default with | default: "…" or set the trait',
    );
  });

  it('a missing variable in a multi-line template says where', () => {
    const r = renderString('Hello\n\n  {{ event.properties.coupon }}', vars, 'email.html');
    expect(reason(r)).toMatch(/^template error in email\.html: undefined variable "event\.properties\.coupon" \(line 3, col \d+\);/);
  });

  it('a missing object on the path fails too', () => {
    expect(reason(renderString('{{ profile.traits.address.zip.code }}', vars, 'sms.text'))).toContain(
      'undefined variable "profile.traits.address.zip"',
    );
    expect(reason(renderString('{{ nope }}', vars, 'sms.text'))).toContain('undefined variable "nope"');
  });

  it('null counts as missing: no event, null traits, null contact fields', () => {
    expect(reason(renderString('{{ event.name }}', noEvent, 'sms.text'))).toContain('undefined variable "event"');
    expect(reason(renderString('{{ profile.traits.nothing }}', vars, 'sms.text'))).toContain(
      'undefined variable "profile.traits.nothing"',
    );
    expect(reason(renderString('{{ profile.phone }}', vars, 'sms.text'))).toContain('undefined variable "profile.phone"');
    expect(ok(renderString('{{ event.name | default: "-" }}', noEvent, 'sms.text'))).toBe('-');
    expect(ok(renderString('{{ profile.traits.nothing | default: "n/a" }}', vars, 'sms.text'))).toBe('n/a');
  });

  it('| default works for missing variables', () => {
    expect(ok(renderString('Hi {{ profile.traits.nickname | default: "there" }}!', vars, 'push.title'))).toBe('Hi there!');
    expect(ok(renderString('{{ profile.traits.nickname | default: "x" | upcase }}', vars, 'push.title'))).toBe('X');
    expect(ok(renderString('{{ profile.traits.first_name | default: "there" }}', vars, 'push.title'))).toBe('Ada');
    expect(ok(renderString('{{ profile.traits.nickname | default: profile.traits.first_name }}', vars, 'f'))).toBe('Ada');
    // default only rescues the variable it filters, and only as the first filter (liquidjs's rule)
    expect(renderString('{{ profile.traits.nickname | default: profile.traits.other }}', vars, 'f').ok).toBe(false);
    expect(renderString('{{ profile.traits.nickname | upcase | default: "x" }}', vars, 'f').ok).toBe(false);
  });

  it('{% if %} on a missing variable is false, not an error', () => {
    const t = '{% if profile.traits.missing %}yes{% else %}no{% endif %}';
    expect(ok(renderString(t, vars, 'sms.text'))).toBe('no');
    expect(ok(renderString('{% if profile.traits.vip %}yes{% else %}no{% endif %}', vars, 'sms.text'))).toBe('yes');
    expect(ok(renderString('{% unless event.properties.coupon %}no coupon{% endunless %}', vars, 'f'))).toBe('no coupon');
    expect(ok(renderString('{% if event %}e{% elsif profile.traits.gone %}g{% else %}none{% endif %}', noEvent, 'f'))).toBe(
      'none',
    );
  });

  it('a value that turns nil inside the template fails instead of leaving a hole', () => {
    const r = renderString('{% assign x = profile.traits.missing %}Hi {{ x }}', vars, 'sms.text');
    expect(reason(r)).toBe('template error in sms.text: {{ x }} renders nothing (nil); give it a default with | default: "…"');
    // `| raw` cannot skip the check
    expect(renderString('{% assign x = profile.traits.missing %}{{ x | raw }}', vars, 'sms.text').ok).toBe(false);
    expect(renderString('{{ profile.traits.nickname | default: nil }}', vars, 'sms.text').ok).toBe(false);
    // an object would print "[object Object]"
    expect(reason(renderString('{{ profile.traits.address }}', vars, 'sms.text'))).toContain('renders an object');
  });

  it('an empty string is a value, not a hole', () => {
    expect(ok(renderString('[{{ "" }}]', vars, 'f'))).toBe('[]');
  });
});

describe('filters and tags', () => {
  it('upcase, date and friends', () => {
    expect(ok(renderString('{{ profile.traits.first_name | upcase }}', vars, 'f'))).toBe('ADA');
    expect(ok(renderString('{{ event.timestamp | date: "%Y-%m-%d %H:%M" }}', vars, 'f'))).toBe('2024-03-05 14:30');
    expect(ok(renderString('{{ event.timestamp | date: "%b %-d, %Y" }}', vars, 'f'))).toBe('Mar 5, 2024');
    expect(ok(renderString('{{ profile.traits.tags | join: ", " }}', vars, 'f'))).toBe('a, b');
    expect(ok(renderString('{{ profile.traits.tags.size }}', vars, 'f'))).toBe('2');
    expect(ok(renderString('{% for t in profile.traits.tags %}[{{ t }}]{% endfor %}', vars, 'f'))).toBe('[a][b]');
    expect(ok(renderString('{{ event.properties.amount | times: 2 }}', vars, 'f'))).toBe('84');
  });

  it('an unknown filter is an error', () => {
    expect(reason(renderString('{{ profile.id | frobnicate }}', vars, 'f'))).toContain('undefined filter: frobnicate');
    expect(checkTemplate('{{ profile.id | frobnicate }}')).toContain('undefined filter: frobnicate');
  });

  it('plain text is returned as is', () => {
    expect(ok(renderString('No templating {here} at all', vars, 'f'))).toBe('No templating {here} at all');
  });

  it('the parse cache does not leak values between renders', () => {
    const t = 'Hi {{ profile.traits.first_name }}';
    expect(ok(renderString(t, vars, 'f'))).toBe('Hi Ada');
    const other = { ...vars, profile: { ...vars.profile, traits: { first_name: 'Grace' } } };
    expect(ok(renderString(t, other, 'f'))).toBe('Hi Grace');
  });
});

describe('checkTemplate', () => {
  it('null for valid templates, a message for broken ones', () => {
    expect(checkTemplate('Hi {{ profile.traits.first_name | default: "there" }}')).toBeNull();
    expect(checkTemplate('{% if a %}x{% endif %}')).toBeNull();
    expect(checkTemplate('plain')).toBeNull();
    expect(checkTemplate('{{ oops')).toMatch(/not closed/);
    expect(checkTemplate('{% if a %}x')).toMatch(/not closed/);
    expect(checkTemplate('{% nosuchtag %}')).toMatch(/tag "nosuchtag" not found/);
  });

  it('does not check variables (they are only known at send time)', () => {
    expect(checkTemplate('{{ profile.traits.anything }}')).toBeNull();
  });
});

describe('safety', () => {
  it('no prototype access', () => {
    for (const t of [
      '{{ profile.constructor }}',
      '{{ profile.__proto__ }}',
      '{{ profile.constructor.name }}',
      '{{ profile.traits.first_name.constructor }}',
      '{{ profile.hasOwnProperty }}',
      '{{ profile["__proto__"] }}',
      '{{ profile.toString }}',
    ]) {
      const r = renderString(t, vars, 'f');
      expect(r.ok, t).toBe(false);
    }
    expect(ok(renderString('[{{ profile.constructor | default: "" }}]', vars, 'f'))).toBe('[]');
  });

  it('__proto__ keys in the data do not pollute anything', () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": "yes"}, "a": 1}') as Record<string, unknown>;
    const v: TemplateVars = { ...vars, profile: { id: 'p', traits: hostile } };
    expect(renderString('{{ profile.traits.polluted }}', v, 'f').ok).toBe(false);
    expect(ok(renderString('{{ profile.traits.a }}', v, 'f'))).toBe('1');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('functions in the variables are never called', () => {
    let called = false;
    const v: TemplateVars = {
      ...vars,
      profile: {
        id: 'p',
        traits: {
          fn: () => {
            called = true;
            return 'boom';
          },
        },
      },
    };
    expect(renderString('{{ profile.traits.fn }}', v, 'f').ok).toBe(false);
    expect(called).toBe(false);
  });

  it('include, render and layout are unavailable', () => {
    for (const t of ['{% include "/etc/passwd" %}', '{% render "secrets" %}', '{% layout "base" %}x', '{% include x %}']) {
      const r = renderString(t, vars, 'email.html');
      expect(reason(r), t).toMatch(/^template error in email\.html: tag "(include|render|layout)" not found/);
      expect(checkTemplate(t), t).not.toBeNull();
    }
  });

  it('a huge loop fails within the limits instead of hanging', () => {
    const start = Date.now();
    const r = renderString('{% for i in (1..100000000) %}x{% endfor %}', vars, 'sms.text');
    expect(reason(r)).toMatch(/^template error in sms\.text: .*limit exceeded/);
    expect(Date.now() - start).toBeLessThan(3000);
  });

  it('nested loops are stopped by the time limit', () => {
    const start = Date.now();
    const t = '{% for i in (1..1000) %}{% for j in (1..1000) %}{% for k in (1..1000) %}x{% endfor %}{% endfor %}{% endfor %}';
    const r = renderString(t, vars, 'sms.text');
    expect(reason(r)).toMatch(/limit exceeded/);
    expect(Date.now() - start).toBeLessThan(5000);
  });

  it('a template that is too long is refused', () => {
    const r = renderString(`{{ profile.id }}${'x'.repeat(1_100_000)}`, vars, 'email.html');
    expect(reason(r)).toMatch(/^template error in email\.html: .*limit exceeded/);
  });

  it('cyclic variables are cut, not followed forever', () => {
    const traits: Record<string, unknown> = { name: 'loop' };
    traits.self = traits;
    const v: TemplateVars = { ...vars, profile: { id: 'p', traits } };
    expect(ok(renderString('{{ profile.traits.self.name | default: "cut" }} {{ profile.traits.name }}', v, 'f'))).toBe(
      'cut loop',
    );
  });
});

describe('property: renderString never throws', () => {
  const fragments = [
    '{{',
    '}}',
    '{%',
    '%}',
    ' ',
    'if',
    'endif',
    'for',
    'in',
    'endfor',
    'else',
    '|',
    ':',
    '"',
    "'",
    '.',
    '[',
    ']',
    '(',
    ')',
    '..',
    '1',
    '10',
    'profile',
    'traits',
    'first_name',
    'event',
    'properties',
    'nope',
    'default',
    'upcase',
    'date',
    'assign',
    'x',
    '=',
    'raw',
    'endraw',
    'comment',
    'include',
    'capture',
    'liquid',
    'echo',
    '\n',
    '-',
    '{{-',
    '-%}',
  ];
  const liquidish = fc.array(fc.constantFrom(...fragments), { maxLength: 40 }).map((xs) => xs.join(''));

  it('on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const r = renderString(s, vars, 'f');
        expect(typeof r.ok).toBe('boolean');
        if (!r.ok) expect(r.reason.startsWith('template error in f: ')).toBe(true);
        expect(typeof checkTemplate(s) === 'string' || checkTemplate(s) === null).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('on Liquid-looking strings', () => {
    fc.assert(
      fc.property(liquidish, (s) => {
        const r = renderString(s, vars, 'f');
        expect(typeof r.ok).toBe('boolean');
        if (r.ok) expect(typeof r.value).toBe('string');
        else expect(r.reason.startsWith('template error in f: ')).toBe(true);
        // a template that checks clean may still fail at render (missing variables), never the reverse
        if (checkTemplate(s) !== null) expect(r.ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});
