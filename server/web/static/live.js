// Keeps the header's unread count live while a page is open (Server-Sent Events).
const badge = document.querySelector('#notifications-link .count');
const announce = document.getElementById('notifications-live');
if (badge && 'EventSource' in window) {
  let last = Number(badge.textContent) || 0;
  const source = new EventSource('/notifications/stream');
  source.addEventListener('unread', (event) => {
    const unread = Number(JSON.parse(event.data).unread) || 0;
    badge.textContent = String(unread);
    badge.setAttribute('aria-label', `${unread} unread`);
    badge.hidden = unread === 0;
    if (unread > last) {
      if (announce) announce.textContent = `${unread} unread notifications`;
      const news = document.getElementById('feed-news');
      if (news) news.hidden = false;
    }
    last = unread;
  });
}
