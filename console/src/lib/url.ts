/**
 * The search params as the address bar has them now. React Router renders a navigation in a
 * transition, so a click handled before that render sees the previous params: building the
 * next URL from those would bring back a filter that was just cleared.
 */
export function latestSearchParams(): URLSearchParams {
  return new URLSearchParams(window.location.search);
}
