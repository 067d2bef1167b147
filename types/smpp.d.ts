/**
 * Types for the parts of `smpp` 0.5.1 (node-smpp) that lapor-gateway uses. The package ships none and
 * @types/smpp does not exist. Only adapters/sms/client.ts and the SMSC simulator (scripts/smsc/) import
 * it; everything else speaks our own types.
 */
declare module 'smpp' {
  import type { EventEmitter } from 'node:events';
  import type { Server as NetServer, Socket } from 'node:net';

  /** A decoded PDU: header fields plus whatever mandatory parameters and TLVs its command has. */
  export interface PDU {
    command: string;
    command_id: number;
    command_status: number;
    command_length: number;
    sequence_number: number;
    [field: string]: unknown;
    isResponse(): boolean;
    response(options?: Record<string, unknown>): PDU;
    toBuffer(): Buffer;
  }

  export interface PDUConstructor {
    new (command: string, options?: Record<string, unknown>): PDU;
    new (buffer: Buffer): PDU;
    maxLength: number;
    fromBuffer(buffer: Buffer): PDU | false;
  }
  export const PDU: PDUConstructor;

  export interface SessionOptions {
    host?: string;
    port?: number;
    tls?: boolean;
    socket?: Socket;
    auto_enquire_link_period?: number;
    [option: string]: unknown;
  }

  export class Session extends EventEmitter {
    constructor(options: SessionOptions);
    socket: Socket;
    sequence: number;
    paused: boolean;
    server?: Server;
    send(pdu: PDU, responseCallback?: (pdu: PDU) => void, sendCallback?: (pdu: PDU) => void): boolean;
    pause(): void;
    resume(): void;
    close(callback?: () => void): void;
    destroy(callback?: () => void): void;
    /** Every command has a shortcut: session.submit_sm({...}, onResponse). */
    [command: string]: unknown;
  }

  export class Server extends NetServer {
    sessions: Session[];
  }

  export function createServer(options?: Record<string, unknown>, listener?: (session: Session) => void): Server;
  export function createServer(listener?: (session: Session) => void): Server;
  export function connect(options: SessionOptions | string, listener?: () => void): Session;

  export const errors: Record<string, number>;
  export const consts: {
    ENCODING: Record<string, number>;
    ESM_CLASS: Record<string, number>;
    REGISTERED_DELIVERY: Record<string, number>;
    MESSAGE_STATE: Record<string, number>;
    TON: Record<string, number>;
    NPI: Record<string, number>;
    [name: string]: Record<string, number>;
  };
  export const commands: Record<string, { id: number; params?: Record<string, unknown> }>;
  export const commandsById: Record<number, { command: string }>;
  export const filters: Record<string, { encode: (value: unknown) => unknown; decode: (value: unknown, skipUdh?: boolean) => unknown }>;
  export const encodings: Record<string, { match(value: string): boolean; encode(value: string): Buffer; decode(value: Buffer): string }>;

  const smpp: {
    PDU: PDUConstructor;
    Session: typeof Session;
    Server: typeof Server;
    createServer: typeof createServer;
    connect: typeof connect;
    errors: typeof errors;
    consts: typeof consts;
    commands: typeof commands;
    commandsById: typeof commandsById;
    filters: typeof filters;
    encodings: typeof encodings;
  };
  export default smpp;
}
