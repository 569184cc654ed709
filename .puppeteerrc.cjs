// puppeteer-core never downloads a browser; this guards any tool that pulls in full puppeteer.
module.exports = { skipDownload: true };
