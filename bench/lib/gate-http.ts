import http from 'node:http';

// HTTP for the gate bench: node:http without timeouts (an overloaded server may take minutes to answer the
// open-loop phase; the global fetch gives up after 300 s without headers), over keep-alive sockets.

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface Answer {
  status: number;
  text: string;
}

function once(url: string, method: string, headers: Record<string, string>, body: string | undefined): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const h = body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    const req = http.request(url, { method, headers: h, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive socket the server closed while idle: the request never reached it, so sending it again
      // on a new socket is safe (the pattern the Node.js documentation gives for `reusedSocket`).
      if (req.reusedSocket && err.code === 'ECONNRESET') once(url, method, headers, body).then(resolve, reject);
      else reject(err);
    });
    req.end(body);
  });
}

export function request(url: string, method: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  return once(url, method, headers, body === undefined ? undefined : JSON.stringify(body));
}

export function closeAgent(): void {
  agent.destroy();
}
