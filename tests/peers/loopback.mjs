// Preloaded into Node test peers (node --import): every listen() binds 127.0.0.1, whatever
// host the program asks for, and the bound port is printed as "PORT <n>" on stdout, so a
// peer started with PORT=0 gets an ephemeral loopback port its fixture can read.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    const port = Number(args[0]);
    const rest = args.slice(1).filter((a) => typeof a === "function");
    args = [port, "127.0.0.1", ...rest];
  } else if (args[0] && typeof args[0] === "object" && "port" in args[0]) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  this.once("listening", () => console.log(`PORT ${this.address().port}`));
  return listen.apply(this, args);
};
