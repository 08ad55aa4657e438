// Starts Swagger UI on the vellum OpenAPI document. Kept out of index.html so that the page
// needs no inline script under its Content-Security-Policy.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // No badge that sends the document's URL to validator.swagger.io (the CSP would block it).
    validatorUrl: null,
  });
});
