package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/profilecache/profilecache/profile"
)

// handleProfilePage shows basic data, interests, one page of orders and the
// latest invoices and inquiries, all from one Read so that every part comes
// from the same stored version of the profile.
func (s *Server) handleProfilePage(c echo.Context) error {
	userID, err := identity(c)
	if err != nil {
		return err
	}
	page, err := parsePageNumber(c)
	if err != nil {
		return err
	}
	orders := profile.Page{Offset: (page - 1) * ordersPerPage, Limit: ordersPerPage}
	preview := profile.Page{Offset: 0, Limit: sectionPreview}
	v, err := s.cfg.Profiles.Read(c.Request().Context(), userID, profile.Query{
		Basic:     true,
		Interests: true,
		Orders:    &orders,
		Invoices:  &preview,
		Inquiries: &preview,
	})
	if err != nil {
		return err
	}

	p := profilePage{
		basePage:  s.newBasePage(c, "Your profile"),
		Basic:     v.Basic,
		Interests: v.Interests,
		Orders:    v.Orders,
		Pager:     newPagination("/profile", page, ordersPerPage, v.Orders.Total),
		Invoices:  v.Invoices,
		Inquiries: v.Inquiries,
		Stale:     markStale(c, v),
	}
	p.UserName = displayName(v.Basic)
	return c.Render(http.StatusOK, "profile", p)
}

func (s *Server) handleAPIMe(c echo.Context) error {
	userID, err := identity(c)
	if err != nil {
		return err
	}
	v, err := s.cfg.Profiles.Read(c.Request().Context(), userID, profile.Query{Basic: true})
	if err != nil {
		return err
	}
	markStale(c, v)
	return writeJSON(c, http.StatusOK, func(b []byte) []byte { return appendBasicJSON(b, v.Basic) })
}

func (s *Server) handleAPIInterests(c echo.Context) error {
	userID, err := identity(c)
	if err != nil {
		return err
	}
	v, err := s.cfg.Profiles.Read(c.Request().Context(), userID, profile.Query{Interests: true})
	if err != nil {
		return err
	}
	markStale(c, v)
	interests := v.Interests
	if interests == nil {
		interests = []string{} // [] rather than null
	}
	return c.JSON(http.StatusOK, interests)
}

func (s *Server) handleAPIOrders(c echo.Context) error {
	userID, err := identity(c)
	if err != nil {
		return err
	}
	p, err := parsePage(c)
	if err != nil {
		return err
	}
	v, err := s.cfg.Profiles.Read(c.Request().Context(), userID, profile.Query{Orders: &p})
	if err != nil {
		return err
	}
	markStale(c, v)
	return writeJSON(c, http.StatusOK, func(b []byte) []byte { return appendOrderPageJSON(b, v.Orders, p) })
}

func (s *Server) handleAPIInvoices(c echo.Context) error {
	userID, err := identity(c)
	if err != nil {
		return err
	}
	p, err := parsePage(c)
	if err != nil {
		return err
	}
	v, err := s.cfg.Profiles.Read(c.Request().Context(), userID, profile.Query{Invoices: &p})
	if err != nil {
		return err
	}
	markStale(c, v)
	return c.JSON(http.StatusOK, toPageJSON(v.Invoices, p, toInvoiceJSON))
}

func (s *Server) handleAPIInquiries(c echo.Context) error {
	userID, err := identity(c)
	if err != nil {
		return err
	}
	p, err := parsePage(c)
	if err != nil {
		return err
	}
	v, err := s.cfg.Profiles.Read(c.Request().Context(), userID, profile.Query{Inquiries: &p})
	if err != nil {
		return err
	}
	markStale(c, v)
	return c.JSON(http.StatusOK, toPageJSON(v.Inquiries, p, toInquiryJSON))
}

func (s *Server) handleAPIRefresh(c echo.Context) error {
	userID, err := identity(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Profiles.Refresh(c.Request().Context(), userID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// staleHeader names the sections of an answer served past their freshness
// window (PROFILE_FRESH), e.g. "Profile-Stale: orders, invoices": the CRM
// could not be asked in time, or the reload is still under way.
const staleHeader = "Profile-Stale"

// markStale sets staleHeader when v has stale sections, and returns its
// value ("" when none).
func markStale(c echo.Context, v profile.View) string {
	if len(v.Stale) == 0 {
		return ""
	}
	names := make([]string, len(v.Stale))
	for i, s := range v.Stale {
		names[i] = s.String()
	}
	h := strings.Join(names, ", ")
	c.Response().Header().Set(staleHeader, h)
	return h
}
