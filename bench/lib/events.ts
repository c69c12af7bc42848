import { deriveSeed, Rng } from './random.js';

// A deterministic stream of realistic Segment calls from a fixed population of customers.
//
// Every customer has an anonymousId (the browser cookie) and a userId. About 30% start anonymous:
// a few page/track calls with only the anonymousId, then an identify carrying userId, anonymousId and
// traits (which links the anonymous activity to the customer). The others identify on their first call.
// After that, calls carry the userId and, from the browser, the anonymousId too; calls from a backend
// library carry only the userId. Overall mix ≈ 20% identify, 70% track, 10% page.

export type SegmentCall = Record<string, unknown> & { type: 'identify' | 'track' | 'page'; messageId: string };

export interface StreamOptions {
  customers: number;
  seed: number;
}

const FIRST_NAMES = ['Ada', 'Grace', 'Alan', 'Linus', 'Margaret', 'Ken', 'Barbara', 'Dennis', 'Frances', 'Edsger', 'Radia', 'Tim', 'Hedy', 'John', 'Katherine', 'Niklaus', 'Sophie', 'Yukihiro', 'Anita', 'Guido'];
const LAST_NAMES = ['Lovelace', 'Hopper', 'Turing', 'Torvalds', 'Hamilton', 'Thompson', 'Liskov', 'Ritchie', 'Allen', 'Dijkstra', 'Perlman', 'Berners-Lee', 'Lamarr', 'McCarthy', 'Johnson', 'Wirth', 'Wilson', 'Matsumoto', 'Borg', 'van Rossum'];
const DOMAINS = ['gmail.com', 'yahoo.com', 'outlook.com', 'icloud.com', 'proton.me', 'acme.io', 'example.org', 'fastmail.com'];
const PLANS = [['free', 6], ['starter', 3], ['pro', 2], ['enterprise', 1]] as const;
const ZONES = ['America/New_York', 'America/Chicago', 'America/Los_Angeles', 'Europe/London', 'Europe/Berlin', 'Europe/Paris', 'Asia/Tokyo', 'Australia/Sydney', 'America/Sao_Paulo', 'Asia/Kolkata'];
const LOCALES = ['en-US', 'en-GB', 'de-DE', 'fr-FR', 'ja-JP', 'pt-BR', 'es-ES', 'en-IN'];
const AREA_CODES = ['415', '212', '312', '617', '206', '303', '512', '646', '213', '305'];
const USER_AGENTS = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
];
const CATEGORIES = ['Shoes', 'Jackets', 'Bags', 'Accessories', 'Shirts', 'Trousers', 'Outdoor', 'Kids'];
const BRANDS = ['Northwind', 'Contoso', 'Fabrikam', 'Tailspin', 'Woodgrove', 'Litware'];
const COLORS = ['black', 'navy', 'olive', 'sand', 'red', 'white'];
const PAGES = [
  ['Home', '/'],
  ['Catalog', '/collections/all'],
  ['Pricing', '/pricing'],
  ['Blog', '/blog/spring-lookbook'],
  ['Help', '/help/shipping'],
  ['Account', '/account'],
] as const;
const REFERRERS = ['https://www.google.com/', 'https://www.instagram.com/', 'https://news.ycombinator.com/', '', 'https://duckduckgo.com/'];
const SITE = 'https://shop.example.com';
const BROWSER_LIBRARY = { name: 'analytics.js', version: 'npm:next-1.70.0' };
const SERVER_LIBRARY = { name: '@segment/analytics-node', version: '2.1.2' };

interface Product {
  product_id: string;
  sku: string;
  name: string;
  category: string;
  brand: string;
  variant: string;
  price: number;
  url: string;
  image_url: string;
}

interface Customer {
  userId: string;
  anonymousId: string;
  /** Calls still to send before identifying (anonymous-first customers); 0 once identified. */
  anonymousLeft: number;
  identified: boolean;
  traits: Record<string, unknown>;
  ip: string;
  userAgent: string;
  locale: string;
  /** Share of this customer's calls that come from the backend (userId only). */
  serverShare: number;
  rng: Rng;
  calls: number;
}

export interface StreamCounts {
  identify: number;
  track: number;
  page: number;
  anonymous: number;
}

export class EventStream {
  private readonly rng: Rng;
  private readonly customers: (Customer | undefined)[];
  private readonly products: Product[];
  private readonly runId: string;
  private sequence = 0;
  /** Distinct customers that appear in the stream so far. */
  distinctCustomers = 0;
  readonly counts: StreamCounts = { identify: 0, track: 0, page: 0, anonymous: 0 };

  constructor(private readonly opts: StreamOptions) {
    this.rng = new Rng(opts.seed);
    this.customers = new Array(opts.customers);
    this.runId = new Rng(deriveSeed(opts.seed, -1)).hex(6);
    const catalog = new Rng(deriveSeed(opts.seed, -2));
    this.products = Array.from({ length: 400 }, (_, i) => {
      const category = catalog.pick(CATEGORIES);
      const id = `prd_${(1000 + i).toString()}`;
      return {
        product_id: id,
        sku: `${category.slice(0, 3).toUpperCase()}-${catalog.hex(6).toUpperCase()}`,
        name: `${catalog.pick(BRANDS)} ${category.replace(/s$/, '')} ${catalog.between(1, 99)}`,
        category,
        brand: catalog.pick(BRANDS),
        variant: catalog.pick(COLORS),
        price: catalog.between(900, 24900) / 100,
        url: `${SITE}/products/${id}`,
        image_url: `https://cdn.example.com/img/${id}.jpg`,
      };
    });
  }

  /** The next `size` calls, as the body of one /v1/batch request. `now` is the client's clock. */
  batch(size: number, now: number): { batch: SegmentCall[]; sentAt: string } {
    const batch: SegmentCall[] = [];
    for (let i = 0; i < size; i++) batch.push(this.next(now));
    return { batch, sentAt: new Date(now).toISOString() };
  }

  next(now: number): SegmentCall {
    const index = this.rng.int(this.opts.customers);
    const c = this.customer(index);
    c.calls++;
    const seq = this.sequence++;
    const base = {
      messageId: `ajs-next-${this.runId}-${seq.toString(36)}-${c.rng.hex(12)}`,
      // The call happened a moment before the client sent it.
      timestamp: new Date(now - c.rng.int(4000)).toISOString(),
      sentAt: new Date(now).toISOString(),
    };

    if (!c.identified) {
      if (c.anonymousLeft > 0) {
        c.anonymousLeft--;
        this.counts.anonymous++;
        const call = c.rng.chance(0.45) ? this.page(c, base) : this.track(c, base);
        return { ...call, anonymousId: c.anonymousId };
      }
      c.identified = true;
      return this.identify(c, base, true);
    }

    const kind = c.rng.weighted([['identify', 0.15], ['track', 0.76], ['page', 0.09]] as const);
    if (kind === 'identify') return this.identify(c, base, !c.rng.chance(c.serverShare));
    // Pages come from the browser; some tracks come from the backend (userId only).
    const fromServer = kind === 'track' && c.rng.chance(c.serverShare);
    const call = kind === 'page' ? this.page(c, base) : this.track(c, base, fromServer);
    return fromServer ? { ...call, userId: c.userId } : { ...call, userId: c.userId, anonymousId: c.anonymousId };
  }

  private customer(index: number): Customer {
    const existing = this.customers[index];
    if (existing) return existing;
    const rng = new Rng(deriveSeed(this.opts.seed, index));
    const first = rng.pick(FIRST_NAMES);
    const last = rng.pick(LAST_NAMES);
    const anonymousFirst = rng.chance(0.3);
    // Unique per customer (the index is part of each), so no two customers share an identifier.
    const traits: Record<string, unknown> = {
      email: `${first}.${last.replace(/[^A-Za-z]/g, '')}.${index}@${rng.pick(DOMAINS)}`.toLowerCase(),
      name: `${first} ${last}`,
      firstName: first,
      lastName: last,
      plan: rng.weighted(PLANS),
      timezone: rng.pick(ZONES),
      createdAt: new Date(Date.UTC(2023, 0, 1) + rng.int(700) * 86_400_000).toISOString(),
    };
    if (rng.chance(0.4)) {
      const area = AREA_CODES[Math.floor(index / 10_000) % AREA_CODES.length];
      const exchange = 200 + Math.floor(index / (10_000 * AREA_CODES.length));
      traits.phone = `+1${area}${exchange}${String(index % 10_000).padStart(4, '0')}`;
    }
    if (rng.chance(0.35)) traits.company = { name: `${rng.pick(BRANDS)} ${rng.pick(['Labs', 'Inc', 'GmbH', 'Ltd'])}`, employee_count: rng.between(5, 5000) };
    const c: Customer = {
      userId: `usr_${index.toString(36).padStart(4, '0')}${rng.hex(10)}`,
      anonymousId: rng.uuid(),
      anonymousLeft: anonymousFirst ? rng.between(1, 4) : 0,
      identified: false,
      traits,
      ip: `${rng.between(11, 223)}.${rng.int(256)}.${rng.int(256)}.${rng.between(1, 254)}`,
      userAgent: rng.pick(USER_AGENTS),
      locale: rng.pick(LOCALES),
      serverShare: rng.chance(0.5) ? 0.3 : 0.1,
      rng,
      calls: 0,
    };
    this.customers[index] = c;
    this.distinctCustomers++;
    return c;
  }

  private browserContext(c: Customer, path: string, title: string): Record<string, unknown> {
    return {
      ip: c.ip,
      userAgent: c.userAgent,
      locale: c.locale,
      library: BROWSER_LIBRARY,
      page: { path, referrer: c.rng.pick(REFERRERS), search: '', title, url: `${SITE}${path}` },
    };
  }

  private identify(c: Customer, base: Record<string, unknown>, fromBrowser: boolean): SegmentCall {
    this.counts.identify++;
    if (c.calls > 1 && c.rng.chance(0.2)) c.traits.plan = c.rng.weighted(PLANS);
    const traits = { ...c.traits, logins: c.calls };
    return {
      type: 'identify',
      ...base,
      messageId: base.messageId as string,
      userId: c.userId,
      ...(fromBrowser ? { anonymousId: c.anonymousId } : {}),
      traits,
      context: fromBrowser ? this.browserContext(c, '/account', 'Your account') : { ip: c.ip, library: SERVER_LIBRARY },
    };
  }

  private page(c: Customer, base: Record<string, unknown>): SegmentCall {
    this.counts.page++;
    const [name, path] = c.rng.pick(PAGES);
    return {
      type: 'page',
      ...base,
      messageId: base.messageId as string,
      name,
      properties: { name, path, title: `${name} | Example Shop`, url: `${SITE}${path}`, referrer: c.rng.pick(REFERRERS), search: '' },
      context: this.browserContext(c, path, `${name} | Example Shop`),
    };
  }

  private track(c: Customer, base: Record<string, unknown>, fromServer = false): SegmentCall {
    this.counts.track++;
    const product = this.rng.pick(this.products);
    const event = fromServer
      ? c.rng.weighted([['Order Completed', 5], ['Subscription Renewed', 2], ['Signed In', 3]] as const)
      : c.rng.weighted([
          ['Product Viewed', 35],
          ['Product Added', 18],
          ['Products Searched', 12],
          ['Checkout Started', 9],
          ['Order Completed', 8],
          ['Signed In', 8],
          ['Coupon Applied', 5],
        ] as const);
    const productProps = { ...product, currency: 'USD', position: c.rng.between(1, 24) };
    let properties: Record<string, unknown>;
    switch (event) {
      case 'Product Viewed':
        properties = productProps;
        break;
      case 'Product Added':
        properties = { ...productProps, quantity: c.rng.between(1, 3), cart_id: `cart_${c.rng.hex(10)}` };
        break;
      case 'Products Searched':
        properties = { query: `${c.rng.pick(COLORS)} ${c.rng.pick(CATEGORIES).toLowerCase()}`, results: c.rng.between(0, 120) };
        break;
      case 'Checkout Started':
      case 'Order Completed': {
        const items = Array.from({ length: c.rng.between(1, 3) }, () => {
          const p = this.rng.pick(this.products);
          return { product_id: p.product_id, sku: p.sku, name: p.name, price: p.price, quantity: c.rng.between(1, 2), category: p.category };
        });
        const subtotal = Math.round(items.reduce((s, i) => s + i.price * i.quantity, 0) * 100) / 100;
        const shipping = subtotal > 75 ? 0 : 5.99;
        const tax = Math.round(subtotal * 0.08 * 100) / 100;
        properties = {
          order_id: `ord_${c.rng.hex(12)}`,
          checkout_id: `chk_${c.rng.hex(12)}`,
          affiliation: 'Example Shop',
          subtotal,
          shipping,
          tax,
          total: Math.round((subtotal + shipping + tax) * 100) / 100,
          revenue: subtotal,
          currency: 'USD',
          ...(c.rng.chance(0.2) ? { coupon: 'SPRING10', discount: Math.round(subtotal * 0.1 * 100) / 100 } : {}),
          products: items,
        };
        break;
      }
      case 'Coupon Applied':
        properties = { cart_id: `cart_${c.rng.hex(10)}`, coupon_id: 'SPRING10', coupon_name: 'Spring sale', discount: 10 };
        break;
      case 'Subscription Renewed':
        properties = { plan: c.traits.plan, interval: 'month', amount: 29, currency: 'USD' };
        break;
      default:
        properties = { method: c.rng.pick(['password', 'google', 'magic_link']) };
    }
    const path = event === 'Product Viewed' || event === 'Product Added' ? `/products/${product.product_id}` : '/cart';
    return {
      type: 'track',
      ...base,
      messageId: base.messageId as string,
      event,
      properties,
      context: fromServer ? { ip: c.ip, library: SERVER_LIBRARY } : this.browserContext(c, path, `${event} | Example Shop`),
    };
  }
}
